/** ckvc's folder in the user's cache (bin/cache-root.cjs); undefined when it is not an absolute path. Throws when
 * Node cannot tell the home folder (no HOME and no passwd entry). */
export declare function cacheRoot(env?: NodeJS.ProcessEnv): string | undefined;

/** The user's private folder `name` in it (real path, 0700, only the user can change it), made if need be and
 * `make`; undefined when there is none to trust. */
export declare function privateCacheFolder(name: string, make?: boolean): string | undefined;
