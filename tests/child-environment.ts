// Run in every test worker before its tests (vitest.config.ts setupFiles): the environment every process a test
// starts inherits. NODE_EXTRA_CA_CERTS (set on machines behind a TLS-inspecting proxy, as here and in CI) makes
// each Node process read and parse the extra certificates at start-up: about 30 ms of CPU per process on this
// machine, and the suite starts over 3,000 of them. No test talks TLS except the S3 race against a real service
// (CKVC_TEST_S3_URL), which keeps it.
import { BufferPool } from '../src/core/buffer-pool.js';
import { BufferPool as BuiltBufferPool } from '../dist/core/buffer-pool.js';

if (!process.env.CKVC_TEST_S3_URL) delete process.env.NODE_EXTRA_CA_CERTS;

// What the CLI does under CKVC_TEST_FAULTS (src/cli/main.ts), for the code tests run in this process: the
// sources' pools and those of the build some tests load (dist/api).
BufferPool.poisonReleased = true;
BuiltBufferPool.poisonReleased = true;
