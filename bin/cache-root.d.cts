/** ckvc's folder in the user's cache (bin/cache-root.cjs); undefined when it is not an absolute path. Throws when
 * Node cannot tell the home folder (no HOME and no passwd entry). */
export declare function cacheRoot(env?: NodeJS.ProcessEnv): string | undefined;
