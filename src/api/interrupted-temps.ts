// The temp files an interrupted command leaves behind are removed by the command line's signal handler
// (cli/interruption.ts); what registers them, and removes them, is the store's (store/interrupt-cleanup.ts).
export { removeRegisteredTemps } from '../store/interrupt-cleanup.js';
