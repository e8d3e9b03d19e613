/**
 * The worker module of PowerPassWorker (power-pass.ts): runs powerPass and
 * moves the plan power's Float64Arrays back instead of copying them.
 * Loaded only by TsWorker; the main thread imports power-pass.ts.
 */
import { serveCalls, Transfer } from '../harness/util/ts-worker.ts';
import { powerPass, powerPassBuffers, type PowerPassInput } from './power-pass.ts';

serveCalls({
  powerPass: async (input: PowerPassInput) => {
    const r = await powerPass(input);
    return new Transfer(r, powerPassBuffers(r));
  },
});
