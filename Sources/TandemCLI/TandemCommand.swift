public import ArgumentParser
import Foundation

/// The `tandem` command: the reference frontend of Tandem.
public struct TandemCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "tandem",
        abstract: "Offline-first sync for detox journals and peer-mentor notes.",
        version: "0.1.0",
        subcommands: [
            InitCommand.self, JournalCommand.self, NoteCommand.self, ConsentCommand.self, TeamCommand.self, PatientsCommand.self, ConflictsCommand.self,
            EnrollCommand.self, SyncCommand.self, StatusCommand.self, DeviceCommand.self, AuditCommand.self, ExportCommand.self, EmergencyCommand.self, ReportCommand.self, ServeCommand.self, AdminCommand.self,
            DemoCommand.self,
        ]
    )

    public init() {}
}

extension TandemCommand {
    /// Parses the process arguments, runs the command and exits: what `tandem`'s `@main` calls.
    public static func runFromCommandLine() async {
        // Every file Tandem creates is readable by its owner only.
        umask(0o077)
        await main()
    }
}
