import ArgumentParser
import Foundation
import TandemCore
import TandemStore

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a local replica: a home folder with its own store, usable fully offline."
    )

    @Option(help: "Your name, as shown to the people you work with.")
    var name: String

    @Option(help: ArgumentHelp("Your role.", valueName: "patient|mentor"))
    var role: String

    @OptionGroup var home: HomeOptions

    func run() throws {
        guard let role = Role(rawValue: role), role == .patient || role == .mentor else {
            throw CLIError.invalidChoice("--role must be patient or mentor.")
        }
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty, trimmed.utf8.count <= 200 else { throw CLIError.invalidChoice("--name must have 1 to 200 bytes.") }
        let home = home.resolved
        try home.create()
        let store = try home.withLock {
            try ReplicaStore.create(at: home.storePath, name: trimmed, role: role, wallMillis: SystemWallClock().nowMillis())
        }
        print("Created a \(role.rawValue) replica in \(home.path) (replica \(store.identity.replica.hex)).")
    }
}
