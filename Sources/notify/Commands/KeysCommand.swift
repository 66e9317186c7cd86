import ArgumentParser
import NotifyCore

/// `notify keys generate`: a new backend API key and the config entry that accepts it.
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Manage backend API keys.", subcommands: [GenerateKeyCommand.self])
}

struct GenerateKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Print a new API key once, and the entry to add to NOTIFY_AUTH_API_KEYS (only its SHA-256).")

    @Option(help: "Name of the key, shown in logs and metrics (e.g. the calling service).") var name: String

    func validate() throws {
        guard !self.name.isEmpty, !self.name.contains(":"), !self.name.contains(",") else {
            throw ValidationError("--name must be non-empty and contain no ':' or ','")
        }
    }

    func run() async throws {
        let generated = APIKeyVerifier.generate(name: self.name)
        print("key (give it to the caller; it is not stored anywhere): \(generated.key)")
        print("config entry (append to NOTIFY_AUTH_API_KEYS, comma separated): \(generated.entry)")
    }
}
