import Foundation
import GRDB
import TandemCore
import TandemStore
import TandemTestSupport
import Testing

/// Help texts and error messages of the real executable, as golden files in
/// `Snapshots/` (regenerate with `TANDEM_REGENERATE_FIXTURES=1`). Each error is one line
/// naming the problem, with a non-zero exit, and writes nothing.
@Suite("CLI snapshots")
struct CLISnapshotTests {
    static let helps: [(String, [String])] = [
        ("help-root", ["--help"]),
        ("help-init", ["init", "--help"]),
        ("help-journal", ["journal", "--help"]),
        ("help-journal-add", ["journal", "add", "--help"]),
        ("help-journal-list", ["journal", "list", "--help"]),
        ("help-journal-edit", ["journal", "edit", "--help"]),
        ("help-note-add", ["note", "add", "--help"]),
        ("help-note-edit", ["note", "edit", "--help"]),
        ("help-conflicts", ["conflicts", "--help"]),
        ("help-conflicts-resolve", ["conflicts", "resolve", "--help"]),
    ]

    static let errors: [(String, [String])] = [
        ("error-mood-out-of-range", ["journal", "add", "--mood", "11", "--craving", "2"]),
        ("error-craving-negative", ["journal", "add", "--mood", "1", "--craving=-1"]),
        ("error-unknown-symptom", ["journal", "add", "--mood", "1", "--craving", "2", "--symptom", "headache"]),
        ("error-bad-date", ["journal", "add", "--mood", "1", "--craving", "2", "--at", "2026-02-30T10:00"]),
        ("error-slept-not-quarter", ["journal", "add", "--mood", "1", "--craving", "2", "--slept", "7.4"]),
        ("error-text-too-long", ["journal", "add", "--mood", "1", "--craving", "2", "--text", String(repeating: "x", count: 65_537)]),
        ("error-unknown-id", ["journal", "show", "abcdef12"]),
        ("error-short-id", ["journal", "show", "ab"]),
        ("error-edit-nothing", ["journal", "edit", "abcdef12"]),
        ("error-since-bad-date", ["journal", "list", "--since", "last week"]),
        ("error-note-bad-patient", ["note", "add", "--patient", "Alex", "--text", "hello"]),
        ("error-resolve-no-choice", ["conflicts", "resolve", "abcdef12"]),
        ("error-init-bad-role", ["init", "--name", "Sam", "--role", "staff"]),
        ("error-init-twice", ["init", "--name", "Sam", "--role", "patient"]),
    ]

    static var folder: URL { URL(fileURLWithPath: "\(#filePath)").deletingLastPathComponent().appendingPathComponent("Snapshots") }

    func check(_ name: String, _ arguments: [String], home: TemporaryDirectory) async throws {
        let result = try await TandemExecutable.run(arguments, home: home.path("home"))
        let shown = arguments.map { $0.count > 40 ? "<\($0.count) characters>" : $0 }.joined(separator: " ")
        let text = "$ tandem \(shown)\n\(result.combined.replacingOccurrences(of: home.path("home"), with: "$TANDEM_HOME"))exit: \(result.status)\n"
        let url = Self.folder.appendingPathComponent("\(name).txt")
        if FixtureFiles.regenerate { try FixtureFiles.write(text, to: url) }
        #expect(text == (try FixtureFiles.text(url)), "\(name) changed; rerun with TANDEM_REGENERATE_FIXTURES=1 and review")
    }

    @Test(arguments: helps.map(\.0))
    func helpText_matchesItsGoldenFile(_ name: String) async throws {
        let home = try TemporaryDirectory()
        try await check(name, try #require(Self.helps.first { $0.0 == name }).1, home: home)
    }

    @Test(arguments: errors.map(\.0))
    func errorMessage_isOneClearLine_andWritesNothing(_ name: String) async throws {
        let home = try TemporaryDirectory()
        let initialized = try await TandemExecutable.run(["init", "--name", "Sam", "--role", "patient"], home: home.path("home"))
        try #require(initialized.status == 0)
        let store = home.path("home/replica.sqlite")
        let before = try Self.contents(of: store)
        let arguments = try #require(Self.errors.first { $0.0 == name }).1
        let result = try await TandemExecutable.run(arguments, home: home.path("home"))
        #expect(result.status != 0)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.hasPrefix("Error: "))
        if !name.hasPrefix("error-resolve") {
            #expect(result.stderr.split(separator: "\n").count == 1, "one line: \(result.stderr)")
        }
        #expect(try Self.contents(of: store) == before, "nothing written")
        try await check(name, arguments, home: home)
    }

    /// Everything a store holds: merged state, outbox and clock floor.
    static func contents(of path: String) throws -> [UInt8] {
        let store = try ReplicaStore.open(at: path)
        return try store.canonicalDump() + store.outbox().flatMap(\.canonicalBytes) + Array("\(try store.clock())".utf8)
    }

    @Test func missingHome_damagedStore_andNewerStore_areNamed() async throws {
        let home = try TemporaryDirectory()
        let missing = try await TandemExecutable.run(["journal", "list"], home: home.path("nowhere"))
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("run 'tandem init' first"))

        try FileManager.default.createDirectory(atPath: home.path("damaged"), withIntermediateDirectories: true)
        try Data(repeating: 7, count: 4096).write(to: URL(fileURLWithPath: home.path("damaged/replica.sqlite")))
        let damaged = try await TandemExecutable.run(["journal", "list"], home: home.path("damaged"))
        #expect(damaged.status == 1)
        #expect(damaged.stderr.contains("not a readable Tandem store"))

        #expect(try await TandemExecutable.run(["init", "--name", "N", "--role", "mentor"], home: home.path("newer")).status == 0)
        try await DatabaseQueue(path: home.path("newer/replica.sqlite")).write { db in
            try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')")
        }
        let newer = try await TandemExecutable.run(["journal", "list"], home: home.path("newer"))
        #expect(newer.status == 1)
        #expect(newer.stderr.contains("newer version of Tandem"))
    }
}
