import ArgumentParser
import Foundation
import TandemCore
import TandemStore

struct JournalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journal",
        abstract: "Write and read your detox journal.",
        subcommands: [Add.self, List.self, Show.self, Edit.self, Delete.self]
    )

    /// Options shared by `add` and `edit`.
    struct EntryOptions: ParsableArguments {
        @Option(help: "When it happened (default: now), like 2026-11-25T21:30 or 2026-11-25T21:30:00+01:00.")
        var at: String?

        @Option(help: ArgumentHelp("Hours slept, 0 to 24 in quarter hours (7.5).", valueName: "hours"))
        var slept: Double?

        @Option(help: "A free tag (repeatable).")
        var tag: [String] = []

        @OptionGroup var text: TextOptions

        /// The edit these options describe: when, sleep, added tags and text.
        func edit() throws -> JournalEdit {
            var edit = JournalEdit()
            edit.at = try at.map { try DateInput.dateTime($0) }
            edit.hoursSlept = slept
            edit.addTags = tag
            edit.text = try text.read()
            return edit
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a journal entry and print its id. Text is read from standard input when it is piped.")

        @Option(help: "Mood, 0 (worst) to 10 (best).")
        var mood: Int

        @Option(help: "Craving, 0 (none) to 10 (overwhelming).")
        var craving: Int

        @Option(help: ArgumentHelp("A withdrawal symptom (repeatable).", valueName: "symptom"), completion: .list(SymptomNames.all))
        var symptom: [String] = []

        @OptionGroup var entry: EntryOptions
        @OptionGroup var home: HomeOptions

        func run() throws {
            var edit = try entry.edit()
            edit.mood = mood
            edit.craving = craving
            edit.addSymptoms = Set(try symptom.map(parseSymptom))
            let clock = SystemWallClock()
            edit.at = try edit.at ?? DateInput.now(clock.nowMillis())
            print(try home.resolved.create(try edit.recordEdit(), clock: clock).hex)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List journal entries, oldest first: yours, or what a patient shares with you (--patient).")

        @Option(help: "Only entries from this local date on (2026-11-25).")
        var since: String?

        @Option(help: ArgumentHelp("A patient's shared journal: a name from 'tandem patients', or a member id.", valueName: "member"))
        var patient: String?

        @Flag(help: "Print JSON (docs/cli.md).")
        var json = false

        @OptionGroup var home: HomeOptions

        struct SharedJSON: Encodable {
            var patient: String
            var name: String?
            /// The scopes shared with you now: metrics, journal.
            var scopes: [String]
            var entries: [JournalRowJSON]
            var notice: String
        }

        func run() throws {
            let since = try since.map(DateInput.date)
            let store = try home.resolved.openStore()
            guard let patient else {
                let rows = try store.journal(since: since)
                if json { return try printJSON(rows.map(JournalRowJSON.init)) }
                guard !rows.isEmpty else { return print("No journal entries.") }
                return print(Self.table(rows))
            }
            let (member, entry) = try resolveMember(patient, what: "--patient", in: store)
            let scopes = try store.subscriptions().filter { $0.channel == member }.compactMap { $0.projection?.rawValue }.sorted()
            let rows = try store.journal(since: since, patient: member)
            if json {
                return try printJSON(SharedJSON(
                    patient: member.hex, name: entry?.name, scopes: scopes, entries: rows.map(JournalRowJSON.init), notice: partTwoNotice))
            }
            guard !scopes.isEmpty || !rows.isEmpty else {
                return print("\(personLabel(member, entry)) shares nothing with you (as of this device's last sync).")
            }
            print("\(personLabel(member, entry)) shares: \(scopes.joined(separator: ", "))")
            print(rows.isEmpty ? "No journal entries." : Self.table(rows))
            print(partTwoNotice)
        }

        static func table(_ rows: [ReplicaStore.JournalRow]) -> String {
            let style = Style.current
            return TandemCLI.table(["ID", "AT", "MOOD", "CRAVING", "SLEPT", "SYMPTOMS", "TEXT"], rows.map { row in
                [
                    shortID(row.id), row.at ?? "", row.mood.map(String.init) ?? "", row.craving.map(String.init) ?? "",
                    hours(row.quarterHoursSlept), terminalSafe(row.symptoms.joined(separator: ", ")),
                    row.texts > 1 ? style.warn("conflict") : (row.texts == 1 ? "yes" : ""),
                ]
            })
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one journal entry in full.")

        @Argument(help: "The entry's id, or the start of it.")
        var id: String

        @Flag(help: "Print JSON (docs/cli.md).")
        var json = false

        @OptionGroup var home: HomeOptions

        func run() throws {
            let store = try home.resolved.openStore()
            let entry = try home.resolved.read(id, as: JournalEntry.init, expected: "journal entry")
            // Another person's entry, shared with this member: say whose, what, and the notice.
            let owners = try store.sources(of: entry.id)
            let shared = try store.subscriptions().filter { owners.contains($0.channel) }
            let textShared = owners.isEmpty || shared.contains { $0.projection == .journal || $0.projection == nil }
            if json {
                var json = JournalEntryJSON(entry)
                if !owners.isEmpty {
                    json.patient = owners.first?.hex
                    json.notice = partTwoNotice
                }
                return try printJSON(json)
            }
            let style = Style.current
            var lines = [style.bold("Journal entry \(entry.id.hex)")]
            if let owner = owners.first {
                let directory = try store.directory()
                lines.append("Patient:   \(personLabel(owner, directory.first { $0.member == owner }))")
            }
            lines.append("At:        \(entry.at?.description ?? "-")")
            lines.append("Mood:      \(entry.mood.map(String.init) ?? "-")")
            lines.append("Craving:   \(entry.craving.map(String.init) ?? "-")")
            lines.append("Slept:     \(entry.quarterHoursSlept.map { hours($0) } ?? "-")")
            lines.append("Symptoms:  \(entry.symptoms.isEmpty ? "-" : entry.symptoms.sorted().map(\.rawValue).joined(separator: ", "))")
            if textShared {
                lines.append("Tags:      \(entry.tags.isEmpty ? "-" : terminalSafe(entry.tags.joined(separator: ", ")))")
                lines += textLines(entry.text, style: style, id: entry.id)
            } else {
                lines.append("Tags, text: not shared with you (the patient shares metrics only)")
            }
            if !owners.isEmpty { lines.append(partTwoNotice) }
            print(lines.joined(separator: "\n"))
        }
    }

    struct Edit: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a journal entry; only the options given change.")

        @Argument(help: "The entry's id, or the start of it.")
        var id: String

        @Option(help: "Mood, 0 to 10.")
        var mood: Int?

        @Option(help: "Craving, 0 to 10.")
        var craving: Int?

        @Option(help: ArgumentHelp("Add a symptom (repeatable).", valueName: "symptom"), completion: .list(SymptomNames.all))
        var addSymptom: [String] = []

        @Option(help: ArgumentHelp("Remove a symptom (repeatable).", valueName: "symptom"), completion: .list(SymptomNames.all))
        var removeSymptom: [String] = []

        @Option(help: "Remove a free tag (repeatable).")
        var removeTag: [String] = []

        @OptionGroup var entry: EntryOptions
        @OptionGroup var home: HomeOptions

        func run() throws {
            var edit = try entry.edit()
            edit.mood = mood
            edit.craving = craving
            edit.addSymptoms = Set(try addSymptom.map(parseSymptom))
            edit.removeSymptoms = Set(try removeSymptom.map(parseSymptom))
            edit.removeTags = removeTag
            try home.resolved.write(try edit.recordEdit(), toRecordNamed: id)
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a journal entry, on every device (there is no undelete).")

        @Argument(help: "The entry's id, or the start of it.")
        var id: String

        @OptionGroup var home: HomeOptions

        func run() throws {
            try home.resolved.write(.delete(.journal), toRecordNamed: id)
        }
    }
}

func parseSymptom(_ name: String) throws -> Symptom {
    guard let symptom = Symptom(name: name) else { throw CLIError.unknownSymptom(name) }
    return symptom
}

/// The text values of a record, flagged when they conflict.
func textLines(_ values: [TextValue], style: Style, id: RecordID) -> [String] {
    switch values.count {
    case 0:
        return ["Text:      -"]
    case 1:
        return ["Text:", terminalSafe(values[0].text, keepingLineBreaks: true)]
    default:
        var lines = [style.warn("Text:      \(values.count) versions written concurrently; settle with 'tandem conflicts resolve \(shortID(id))'")]
        for (index, value) in values.enumerated() {
            lines.append(style.dim("[\(index + 1)] \(isoTime(value.id.timestamp)) on replica \(String(value.id.replica.hex.prefix(8)))"))
            lines.append(terminalSafe(value.text, keepingLineBreaks: true))
        }
        return lines
    }
}
