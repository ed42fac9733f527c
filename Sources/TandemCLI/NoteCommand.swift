import ArgumentParser
import Foundation
import TandemCore
import TandemStore

struct NoteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "note",
        abstract: "Write and read session notes about the patients you mentor.",
        subcommands: [Add.self, List.self, Show.self, Edit.self, Delete.self]
    )

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a note about a patient and print its id.")

        @Option(help: ArgumentHelp("The patient the note is about: a name from 'tandem patients', or a member id.", valueName: "member"))
        var patient: String

        @Option(help: "The session's date (default: today), like 2026-11-25.")
        var date: String?

        @Option(help: ArgumentHelp("A follow-up item (repeatable).", valueName: "item"))
        var followUp: [String] = []

        @Flag(help: "Share the note with the patient.")
        var shareWithPatient = false

        @OptionGroup var text: TextOptions
        @OptionGroup var home: HomeOptions

        func run() throws {
            var edit = NoteEdit()
            edit.patient = try resolveMember(patient, what: "--patient", in: try home.resolved.openStore()).id
            let clock = SystemWallClock()
            edit.date = try date.map(DateInput.date) ?? DateInput.now(clock.nowMillis()).date
            edit.text = try text.read()
            edit.addFollowUps = followUp
            edit.shared = shareWithPatient
            print(try home.resolved.create(try edit.recordEdit(), clock: clock).hex)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List notes by date.")

        @Option(help: ArgumentHelp("Only notes about this patient (a name, or a member id).", valueName: "member"))
        var patient: String?

        @Flag(help: "Print JSON (docs/cli.md).")
        var json = false

        @OptionGroup var home: HomeOptions

        func run() throws {
            let store = try home.resolved.openStore()
            let member = try patient.map { try resolveMember($0, what: "--patient", in: store).id }
            let rows = try store.notes(patient: member)
            if json { return try printJSON(rows.map(NoteRowJSON.init)) }
            // Notes another member wrote (shared with this patient, or a supervised mentor's).
            let othersNotes = try rows.contains { !(try store.sources(of: $0.id)).isEmpty }
            defer { if othersNotes { print(partTwoNotice) } }
            guard !rows.isEmpty else { return print("No notes.") }
            let style = Style.current
            print(table(["ID", "DATE", "PATIENT", "SHARED", "FOLLOW-UPS", "TEXT"], rows.map { row in
                [
                    shortID(row.id), row.date ?? "", String(row.patient.hex.prefix(8)), row.shared ? "yes" : "no",
                    String(row.followUps), row.texts > 1 ? style.warn("conflict") : (row.texts == 1 ? "yes" : ""),
                ]
            }))
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one note in full.")

        @Argument(help: "The note's id, or the start of it.")
        var id: String

        @Flag(help: "Print JSON (docs/cli.md).")
        var json = false

        @OptionGroup var home: HomeOptions

        func run() throws {
            let note = try home.resolved.read(id, as: MentorNote.init, expected: "note")
            // A note another member wrote (shared with this patient, or a supervised mentor's).
            let author = try home.resolved.openStore().sources(of: note.id).first
            if json {
                var json = NoteJSON(note)
                json.author = author?.hex
                json.notice = author == nil ? nil : partTwoNotice
                return try printJSON(json)
            }
            defer { if author != nil { print(partTwoNotice) } }
            let style = Style.current
            var lines = [style.bold("Note \(note.id.hex)")]
            lines.append("Patient:    \(note.patient.hex)")
            lines.append("Date:       \(note.date?.description ?? "-")")
            lines.append("Shared:     \(note.isShared ? "yes, the patient sees this note" : "no")")
            lines.append("Follow-ups: \(note.followUps.isEmpty ? "-" : terminalSafe(note.followUps.joined(separator: "; ")))")
            lines += textLines(note.text, style: style, id: note.id)
            print(lines.joined(separator: "\n"))
        }
    }

    struct Edit: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a note; only the options given change.")

        @Argument(help: "The note's id, or the start of it.")
        var id: String

        @Option(help: "The session's date, like 2026-11-25.")
        var date: String?

        @Option(help: ArgumentHelp("Add a follow-up item (repeatable).", valueName: "item"))
        var addFollowUp: [String] = []

        @Option(help: ArgumentHelp("Remove a follow-up item (repeatable).", valueName: "item"))
        var removeFollowUp: [String] = []

        @Flag(inversion: .prefixedNo, help: "Share the note with the patient, or stop sharing it.")
        var shareWithPatient: Bool?

        @OptionGroup var text: TextOptions
        @OptionGroup var home: HomeOptions

        func run() throws {
            var edit = NoteEdit()
            edit.date = try date.map(DateInput.date)
            edit.text = try text.read()
            edit.addFollowUps = addFollowUp
            edit.removeFollowUps = removeFollowUp
            edit.shared = shareWithPatient
            try home.resolved.write(try edit.recordEdit(), toRecordNamed: id)
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a note, on every device (there is no undelete).")

        @Argument(help: "The note's id, or the start of it.")
        var id: String

        @OptionGroup var home: HomeOptions

        func run() throws {
            try home.resolved.write(.delete(.note), toRecordNamed: id)
        }
    }
}

