import AttentionCLI

await AttentionCommand.runAsRoot()
