import Foundation
import TandemProcess
import TandemCore
import TandemStore
import TandemTestSupport
import TandemWorkload
import Testing

/// Invariant 2 (DESIGN.md), device side: what the CLI reported written survives kill -9.
@Suite("CLI durability")
struct CLIDurabilityTests {
    static let kills = FixtureFiles.environmentInt("TANDEM_KILL_ROUNDS") ?? 20

    /// A child `tandem journal add` is killed with SIGKILL at a random moment, again and
    /// again; afterwards every entry the CLI reported is present, none twice, and SQLite's
    /// integrity check says ok.
    @Test func everyReportedEntry_survivesKill9() async throws {
        let dir = try TemporaryDirectory()
        let home = dir.path("home")
        try #require(try await TandemExecutable.run(["init", "--name", "Sam", "--role", "patient"], home: home).status == 0)
        var rng = SeededGenerator(seed: UInt64(Date().timeIntervalSince1970))

        // How long one write takes here, to spread the kills over it.
        let start = Date()
        try #require(try await TandemExecutable.run(["journal", "add", "--mood", "1", "--craving", "1", "--text", "warm-up"], home: home).status == 0)
        var typical = max(0.005, Date().timeIntervalSince(start))

        var reported: [String: String] = [:]  // marker → id
        var killed = 0
        var round = 0
        while (killed < Self.kills || reported.count < 3) && round < Self.kills * 20 {
            round += 1
            let marker = "marker-\(round)"
            let process = try Subprocess(
                TandemExecutable.url.path, ["journal", "add", "--mood", "\(round % 11)", "--craving", "3", "--text", marker, "--home", home],
                environment: ["NO_COLOR": "1", "TZ": "UTC"], output: .pipe, error: .null)
            try await Task.sleep(for: .seconds(Double.random(in: (typical * 0.4)...(typical * 1.3), using: &rng)))
            let wasRunning = process.isRunning
            process.signal(SIGKILL)
            // The machine's load changes while the suite runs, and a write's time with it:
            // a write that ended before its kill shortens the next wait, a kill lengthens it
            // a little, so the kills keep landing inside writes.
            typical = wasRunning ? typical * 1.05 : max(0.005, typical * 0.7)
            let printed = process.standardOutput!.readDataToEndOfFile()
            let ended = process.waitUntilExit()
            if case .signalled = ended {
                killed += 1
            } else if ended == .exited(0) {
                let id = String(decoding: printed, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(id.count == 32)
                reported[marker] = id
            } else {
                Issue.record("tandem ended \(ended) in round \(round)")
            }
        }
        #expect(killed >= Self.kills, "only \(killed) kills landed in \(round) rounds")
        #expect(reported.count >= 3, "too few writes completed to check anything")

        let store = try ReplicaStore.open(at: home + "/replica.sqlite")
        #expect(try store.integrityCheck() == ["ok"])
        var found: [String: [String]] = [:]
        for row in try store.journal() {
            let record = try #require(try store.record(row.id))
            let entry = try #require(JournalEntry(record))
            for text in entry.text { found[text.text, default: []].append(row.id.hex) }
        }
        for (marker, id) in reported {
            #expect(found[marker] == [id], "\(marker) reported as written")
        }
        for (text, ids) in found { #expect(ids.count == 1, "\(text) stored \(ids.count) times") }
        // Every stored entry is in the outbox exactly once, ready to sync.
        let outboxCreates = try store.outbox().filter { $0.kind == .create }.map(\.record)
        #expect(Set(outboxCreates).count == outboxCreates.count)
        #expect(Set(outboxCreates) == Set(try store.journal().map(\.id)))
        print("durability: \(killed) kills, \(reported.count) completed writes in \(round) rounds")
    }
}
