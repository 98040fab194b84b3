import ArgumentParser
import AttentionCLI

/// The message the command line prints for the error `body` throws (ArgumentParser's, as `attention`
/// shows it), or nil if it returns: CLI error tests check it names the flag at fault.
func commandError(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch {
        return AttentionCommand.message(for: error)
    }
}
