import Foundation
import TandemCore
import TandemStore
import TandemTestSupport
import Testing

/// Every command through the real executable, on a real home.
@Suite("CLI end to end")
struct CLIEndToEndTests {
    struct JournalRow: Decodable { var id: String; var mood: Int?; var craving: Int?; var symptoms: [String]; var conflict: Bool; var hoursSlept: Double? }
    struct Entry: Decodable { var id: String; var at: String?; var mood: Int?; var symptoms: [String]; var tags: [String]; var text: [Text]; var conflict: Bool }
    struct Text: Decodable { var text: String; var replica: String }
    struct NoteRow: Decodable { var id: String; var patient: String; var sharedWithPatient: Bool }
    struct Note: Decodable { var id: String; var followUps: [String]; var sharedWithPatient: Bool; var text: [Text] }
    struct Conflict: Decodable { var record: String; var field: String; var values: [Text] }

    func run(_ arguments: [String], _ home: String, stdin: String? = nil) async throws -> String {
        let result = try await TandemExecutable.run(arguments, home: home, stdin: stdin)
        #expect(result.status == 0, "tandem \(arguments.joined(separator: " ")): \(result.stderr)")
        return result.stdout
    }

    func json<T: Decodable>(_ type: T.Type, _ arguments: [String], _ home: String) async throws -> T {
        try JSONDecoder().decode(T.self, from: Data(try await run(arguments, home).utf8))
    }

    @Test func patientJournal_everyCommand() async throws {
        let dir = try TemporaryDirectory()
        let home = dir.path("patient")
        #expect(try await run(["init", "--name", "Sam", "--role", "patient"], home).contains("Created a patient replica"))
        let attributes = try FileManager.default.attributesOfItem(atPath: home)
        #expect(attributes[.posixPermissions] as? Int == 0o700)

        let first = try await run(["journal", "add", "--mood", "3", "--craving", "8", "--symptom", "nausea", "--symptom", "runny nose",
                             "--tag", "Family", "--slept", "4.5", "--at", "2026-11-20T23:10:00+01:00", "--text", "Rough night."], home)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(first.count == 32)
        let second = try await run(["journal", "add", "--mood", "6", "--craving", "2", "--at", "2026-11-22 09:00", "--text", "-"], home, stdin: "Piped text\nline two")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        // Without `--text -`, standard input is left alone: the rest of a script is not text.
        let scripted = try await run(["journal", "add", "--mood", "5", "--craving", "5"], home, stdin: "tandem sync\necho done\n")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try await json(Entry.self, ["journal", "show", scripted, "--json"], home).text.isEmpty)
        _ = try await run(["journal", "delete", scripted], home)
        let textFile = dir.path("entry.txt")
        try "From a file".write(toFile: textFile, atomically: true, encoding: .utf8)
        let third = try await run(["journal", "add", "--mood", "7", "--craving", "1", "--text-file", textFile, "--at", "2026-11-24T08:00Z"], home)
            .trimmingCharacters(in: .whitespacesAndNewlines)

        let rows = try await json([JournalRow].self, ["journal", "list", "--json"], home)
        #expect(rows.map(\.id) == [first, second, third])
        #expect(rows[0].symptoms == ["nausea", "runny-nose"] && rows[0].hoursSlept == 4.5)
        #expect(try await json([JournalRow].self, ["journal", "list", "--since", "2026-11-22", "--json"], home).map(\.id) == [second, third])
        #expect(try await run(["journal", "list"], home).contains(String(first.prefix(8))))

        let piped = try await json(Entry.self, ["journal", "show", String(second.prefix(6)), "--json"], home)
        #expect(piped.text.map(\.text) == ["Piped text\nline two"])
        #expect(piped.at == "2026-11-22T09:00:00+00:00")
        #expect(try await json(Entry.self, ["journal", "show", third, "--json"], home).text.map(\.text) == ["From a file"])

        _ = try await run(["journal", "edit", first, "--mood", "4", "--remove-symptom", "nausea", "--add-symptom", "tremor",
                     "--remove-tag", "family", "--tag", "work", "--text", "Rough night, better morning."], home)
        let edited = try await json(Entry.self, ["journal", "show", first, "--json"], home)
        #expect(edited.mood == 4)
        #expect(edited.symptoms == ["runny-nose", "tremor"])
        #expect(edited.tags == ["work"])
        #expect(edited.text.map(\.text) == ["Rough night, better morning."])
        #expect(try await run(["journal", "show", first], home).contains("Rough night, better morning."))

        _ = try await run(["journal", "delete", String(third.prefix(8))], home)
        #expect(try await json([JournalRow].self, ["journal", "list", "--json"], home).map(\.id) == [first, second])
        let gone = try await TandemExecutable.run(["journal", "show", third], home: home)
        #expect(gone.status != 0)

        // Everything written went to the outbox, ready to sync later.
        let store = try ReplicaStore.open(at: home + "/replica.sqlite")
        #expect(try store.outbox().count > 10)
        for name in try FileManager.default.contentsOfDirectory(atPath: home) {
            #expect(try FileManager.default.attributesOfItem(atPath: home + "/" + name)[.posixPermissions] as? Int == 0o600, "\(name)")
        }
    }

    @Test func mentorNotes_everyCommand() async throws {
        let dir = try TemporaryDirectory()
        let home = dir.path("mentor")
        _ = try await run(["init", "--name", "Alex", "--role", "mentor"], home)
        let patient = MemberID.random().hex
        let other = MemberID.random().hex
        let note = try await run(["note", "add", "--patient", patient, "--text", "Talked through the evening.", "--follow-up", "Call on Friday",
                            "--date", "2026-11-20"], home).trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try await run(["note", "add", "--patient", other, "--text", "First meeting.", "--share-with-patient"], home)
        #expect(try await json([NoteRow].self, ["note", "list", "--json"], home).count == 2)
        let mine = try await json([NoteRow].self, ["note", "list", "--patient", patient, "--json"], home)
        #expect(mine.map(\.id) == [note] && mine.first?.sharedWithPatient == false)

        _ = try await run(["note", "edit", note, "--share-with-patient", "--add-follow-up", "bring meeting list", "--remove-follow-up", "call on friday"], home)
        let shown = try await json(Note.self, ["note", "show", note, "--json"], home)
        #expect(shown.sharedWithPatient)
        #expect(shown.followUps == ["bring meeting list"])
        _ = try await run(["note", "edit", note, "--no-share-with-patient"], home)
        #expect(try await json(Note.self, ["note", "show", note, "--json"], home).sharedWithPatient == false)
        #expect(try await run(["note", "show", note], home).contains("Talked through the evening."))
        #expect(try await run(["note", "list"], home).contains(String(note.prefix(8))))

        _ = try await run(["note", "delete", note], home)
        #expect(try await json([NoteRow].self, ["note", "list", "--json"], home).count == 1)
        let wrongKind = try await TandemExecutable.run(["journal", "show", try await json([NoteRow].self, ["note", "list", "--json"], home)[0].id], home: home)
        #expect(wrongKind.stderr.contains("is not a journal entry"))
    }

    /// A text conflict arrives from another device; the patient lists and settles it.
    @Test func conflicts_listAndResolve() async throws {
        let dir = try TemporaryDirectory()
        let home = dir.path("patient")
        _ = try await run(["init", "--name", "Sam", "--role", "patient"], home)
        let id = try await run(["journal", "add", "--mood", "3", "--craving", "8", "--text", "Slept badly."], home)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try await run(["conflicts"], home).contains("No conflicts."))

        // What the laptop wrote concurrently, as a sync would deliver it.
        let store = try ReplicaStore.open(at: home + "/replica.sqlite")
        let record = try RecordID(hex: id)
        let base = try #require(try store.record(record)?.register("text"))
        let laptop = ReplicaID.random()
        let mine = try #require(base.frontier.first)
        try store.apply([
            Change(id: ChangeID(timestamp: HybridTimestamp(wallMillis: mine.timestamp.wallMillis + 1), replica: laptop), record: record,
                   field: "text", kind: .mv, value: .string("Slept badly, shaky."), context: base.resolvingContext),
        ])
        // The phone edits after seeing the laptop's value: no conflict yet.
        _ = try await run(["journal", "edit", id, "--text", "Slept badly, anxious."], home)
        // Meanwhile the laptop, offline, wrote again from what it had: a real conflict.
        let latest = try #require(try store.record(record)?.register("text"))
        try store.apply([
            Change(id: ChangeID(timestamp: HybridTimestamp(wallMillis: mine.timestamp.wallMillis + 2), replica: laptop), record: record,
                   field: "text", kind: .mv, value: .string("Called my mentor."), context: base.resolvingContext),
        ])
        #expect(latest.frontier.count == 1)
        let conflicts = try await json([Conflict].self, ["conflicts", "list", "--json"], home)
        #expect(conflicts.count == 1)
        #expect(Set(conflicts[0].values.map(\.text)) == ["Slept badly, anxious.", "Called my mentor."])
        #expect(try await run(["journal", "show", id], home).contains("2 versions written concurrently"))
        #expect(try await run(["conflicts"], home).contains("[2]"))

        _ = try await run(["conflicts", "resolve", String(id.prefix(8)), "--keep", "2"], home)
        #expect(try await json([Conflict].self, ["conflicts", "list", "--json"], home).isEmpty)
        let kept = conflicts[0].values[1].text
        #expect(try await json(Entry.self, ["journal", "show", id, "--json"], home).text.map(\.text) == [kept])

        let again = try await TandemExecutable.run(["conflicts", "resolve", id, "--text", "x"], home: home)
        #expect(again.stderr.contains("has no open text conflict"))
    }

    @Test func shellCompletions_comeFromArgumentParser() async throws {
        let result = try await TandemExecutable.run(["--generate-completion-script", "bash"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("runny-nose"))
    }

    @Test func colour_onlyOnATerminal_andNeverWithNoColor() async throws {
        let dir = try TemporaryDirectory()
        let home = dir.path("p")
        _ = try await run(["init", "--name", "Sam", "--role", "patient"], home)
        _ = try await run(["journal", "add", "--mood", "3", "--craving", "8"], home)
        #expect(!(try await run(["journal", "list"], home)).contains("\u{1B}["), "a pipe is not a terminal")
    }
}
