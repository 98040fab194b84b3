import AttentionCLI

// Before the first await: no other thread has allocated yet.
AttentionCommand.prepareProcess()
await AttentionCommand.runAsRoot()
