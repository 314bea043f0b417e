// Loaded into every server a test spawns (see spawnServer): the test process holds the other end of
// an IPC channel, which closes when it dies for any reason (a stopped or crashed vitest worker
// included), and then this server exits too instead of living on with its port and children.
if (process.channel) {
  process.channel.unref(); // the lifeline alone must not keep a server alive that wants to exit
  process.once('disconnect', () => process.exit(70));
}
