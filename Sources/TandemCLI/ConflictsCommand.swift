import ArgumentParser
import Foundation
import TandemCore
import TandemStore

struct ConflictsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conflicts",
        abstract: "List texts written concurrently on two devices: every version is kept until you settle it.",
        subcommands: [ListConflicts.self, Resolve.self],
        defaultSubcommand: ListConflicts.self
    )

    struct ListConflicts: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List open text conflicts.")

        @Flag(help: "Print JSON (docs/cli.md).")
        var json = false

        @OptionGroup var home: HomeOptions

        func run() throws {
            let conflicts = try home.resolved.openStore().conflicts()
            if json { return try printJSON(conflicts.map(ConflictJSON.init)) }
            guard !conflicts.isEmpty else { return print("No conflicts.") }
            let style = Style.current
            var lines: [String] = []
            for conflict in conflicts {
                let kind = conflict.collection == .note ? "Note" : "Journal entry"
                lines.append(style.bold("\(kind) \(shortID(conflict.record)), \(conflict.field): \(conflict.values.count) versions"))
                for (index, value) in conflict.values.enumerated() {
                    lines.append("  [\(index + 1)] written \(isoTime(value.id.timestamp)) on replica \(String(value.id.replica.hex.prefix(8)))")
                    lines.append(terminalSafe(value.text, keepingLineBreaks: true).split(separator: "\n", omittingEmptySubsequences: false).map { "      " + $0 }.joined(separator: "\n"))
                }
            }
            print(lines.joined(separator: "\n"))
        }
    }

    struct Resolve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Settle a conflict: keep one version, or write the text that replaces them all.")

        @Argument(help: "The record's id, or the start of it.")
        var id: String

        @Option(help: ArgumentHelp("Keep version N as listed by 'tandem conflicts'.", valueName: "n"))
        var keep: Int?

        @OptionGroup var text: TextOptions
        @OptionGroup var home: HomeOptions

        func validate() throws {
            if (keep == nil) == (text.text == nil && text.textFile == nil) {
                throw ValidationError("Give either --keep N or the new text (--text or --text-file).")
            }
        }

        func run() throws {
            let home = home.resolved
            try home.withLock {
                let store = try home.openStore()
                let record = try store.resolve(id)
                // What another member shared is theirs to settle, never this device's.
                guard try store.sources(of: record).isEmpty else {
                    throw CLIError.invalidChoice("This record was shared with you by its author; only they can change it.")
                }
                guard let conflict = try store.conflicts().first(where: { $0.record == record }) else {
                    throw StoreError.noConflict(id: record.hex)
                }
                let resolved: String
                if let keep {
                    guard (1...conflict.values.count).contains(keep) else {
                        throw CLIError.invalidChoice("--keep must be from 1 to \(conflict.values.count).")
                    }
                    resolved = conflict.values[keep - 1].text
                } else {
                    resolved = try text.read() ?? ""
                }
                var edit = RecordEdit(collection: conflict.collection ?? .journal)
                edit.text(conflict.field, resolved)
                try store.write(edit, to: record, clock: SystemWallClock())
            }
        }
    }
}
