import AttentionCLI
AttentionCommand.main()
