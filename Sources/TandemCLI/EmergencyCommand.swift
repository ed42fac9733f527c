import ArgumentParser
import Foundation
import TandemClient
import TandemCore
import TandemProtocol
import TandemStore

/// A staff member's read of a patient's journal under emergency access (42 CFR §2.51):
/// through the server, shown once, never kept on this device.
struct EmergencyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emergency",
        abstract: "Read a patient's journal under emergency access granted to you on the server's host.",
        subcommands: [Read.self]
    )

    struct Read: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a patient's journal now; the read is recorded in their accounting, and nothing is kept on this device.")

        @Option(help: ArgumentHelp("The patient: a member id, or their name.", valueName: "member"))
        var patient: String

        @Flag(help: "Print JSON (docs/cli.md).")
        var json = false

        @Flag(help: "Allow plain HTTP to a non-loopback server (a trusted network only).")
        var allowInsecure = false

        @OptionGroup var home: HomeOptions

        func run() async throws {
            let store = try home.resolved.openStore()
            guard store.identity.role == .staff else {
                throw CLIError.invalidChoice("Only a staff member's device reads under emergency access; this one is a \(store.identity.role.rawValue)'s.")
            }
            let answer = try await Syncer(store: store, allowInsecure: allowInsecure).emergencyRead(patient: patient)
            if json {
                struct Output: Encodable {
                    var read: EmergencyReadResponse
                    var notice: String
                }
                return try printJSON(Output(read: answer, notice: partTwoNotice))
            }
            let name = terminalSafe(answer.patientName)
            print("Emergency access to \(name)'s journal, until \(isoMillis(UInt64(max(0, answer.expiresAt)))).")
            if answer.truncated == true { print("The journal is too long to read whole here: only its oldest part is shown.") }
            print("This read is recorded in \(name)'s accounting of disclosures\(answer.disclosure.map { " (entry \($0))" } ?? ""), and \(name) is told of it.")
            if answer.entries.isEmpty {
                print("No journal entries.")
            } else {
                print(table(["ID", "AT", "MOOD", "CRAVING", "SLEPT", "SYMPTOMS"], answer.entries.map { entry in
                    [
                        String(entry.id.prefix(8)), terminalSafe(entry.at ?? ""), entry.mood.map(String.init) ?? "",
                        entry.craving.map(String.init) ?? "", hours(entry.hoursSlept.flatMap { Int(exactly: ($0 * 4).rounded()) }),
                        terminalSafe(entry.symptoms.joined(separator: ", ")),
                    ]
                }))
                for entry in answer.entries where !entry.text.isEmpty {
                    print("")
                    print("\(String(entry.id.prefix(8))) \(terminalSafe(entry.at ?? "")):")
                    for text in entry.text { print(terminalSafe(text, keepingLineBreaks: true)) }
                }
            }
            print(partTwoNotice)
        }
    }
}
