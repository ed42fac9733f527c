import Foundation
import TandemClient
import TandemCore
import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// Text removed on the server (superseded by an edit, or deleted) leaves every file of the
/// server's store soon after (PROTOCOL.md §9.15): `secure_delete` zeroes the database's
/// pages, and a TRUNCATE checkpoint empties the WAL that still held the old frames.
///
/// On SQLite only: it reads the file's bytes after `secure_delete` and the WAL truncation; on PostgreSQL `PostgresDeletedTextTests` reads the tables (what PostgreSQL's files keep is in docs/operations.md).
@Suite("Server scrub")
struct ServerScrubTests {
    /// The store's files (database, WAL, shared memory) that hold `needle`'s bytes.
    static func filesContaining(_ needle: String, store path: String) -> [String] {
        ["", "-wal", "-shm"].map { path + $0 }.filter { file in
            (FileManager.default.contents(atPath: file)?.range(of: Data(needle.utf8))) != nil
        }
    }

    @Test func editedAndDeletedText_leavesEveryFileOfTheServersStore() async throws {
        let (dir, server) = try await InProcessServer.center("server-scrub")
        try server.sqlite.checkpointInBackground(every: .milliseconds(100), scrubWithin: .seconds(1))
        let phone = try await server.device(dir, "phone")
        let first = "SCRUBMARKER-first-version-of-the-night"
        let second = "SCRUBMARKER-second-version-of-the-night"
        var edit = JournalEdit()
        edit.mood = 2
        edit.craving = 8
        edit.text = first
        let (entry, _) = try phone.write(try edit.recordEdit(), to: nil, clock: SystemWallClock())
        _ = try await Syncer(store: phone).sync()
        #expect(!Self.filesContaining(first, store: (try server.sqlite.path)).isEmpty, "planted")

        // An edit supersedes the first text; then the entry is deleted.
        var change = JournalEdit()
        change.text = second
        _ = try phone.write(try change.recordEdit(), to: entry, clock: SystemWallClock())
        _ = try await Syncer(store: phone).sync()
        _ = try phone.write(.delete(.journal), to: entry, clock: SystemWallClock())
        _ = try await Syncer(store: phone).sync()

        // The bound is for liveness: the scrub is due 1 s after the removal here.
        try await within(.seconds(30)) {
            while !(Self.filesContaining(first, store: (try server.sqlite.path)) + Self.filesContaining(second, store: (try server.sqlite.path))).isEmpty {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(Self.filesContaining("SCRUBMARKER", store: (try server.sqlite.path)).isEmpty)
        // The store still works.
        _ = try phone.write(try moodEntry(4), to: nil, clock: SystemWallClock())
        #expect(try await Syncer(store: phone).sync().pushed > 0)
    }
}
