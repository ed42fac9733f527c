import Foundation
import GRDB
import TandemClient
import TandemCore
import TandemProtocol
@testable import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// Retention of the accounting (issue 14): entries older than the retention period (6 years
/// by default, never under 3) are pruned, and each chain stays verifiable from the oldest
/// entry kept, on the server, on a device that saw the pruned entries and on one that never
/// did. A chain cut shorter than 3 years is found by the patient's device.
@Suite("Accounting retention")
struct AccountingRetentionTests {
    static let year: UInt64 = 365 * 86_400_000

    struct Center {
        let dir: TemporaryDirectory
        let clock: ManualWallClock
        let server: InProcessServer
        let patient: ReplicaStore, mentor: ReplicaStore
        let sam: MemberID

        /// Sam granted Mia (his mentor) his journal; Mia read three entries, one sync each.
        init(_ storeKind: ServerStoreKind) async throws {
            dir = try TemporaryDirectory("accounting-retention")
            clock = ManualWallClock(millis: SystemWallClock().nowMillis())
            server = try await InProcessServer(storage: try await storeKind.center(in: dir), wallClock: clock)
            patient = try await server.device(dir, "patient", member: "Sam")
            mentor = try await server.device(dir, "mentor", role: .mentor, member: "Mia")
            sam = try #require(try patient.binding()?.member)
            let mia = try #require(try mentor.binding()?.member)
            let admin: any ServerAdministration = server.storage
            _ = try await admin.assign(
                .mentor, carer: try await admin.member(named: "Mia"), member: try await admin.member(named: "Sam"), nowMillis: clock.nowMillis())
            _ = try patient.write(
                ConsentEdit.grant(patient: sam, recipient: mia, scope: .journal, expiresMillis: nil, purpose: "peer support"), to: nil,
                clock: SystemWallClock())
            for mood in 0..<3 { try await read(mood) }
        }

        /// Sam writes an entry and Mia reads it: one more entry in Sam's chain.
        func read(_ mood: Int) async throws {
            _ = try patient.write(try moodEntry(mood), to: nil, clock: SystemWallClock())
            _ = try await Syncer(store: patient).sync()
            _ = try await Syncer(store: mentor).sync()
        }

        func chain() async throws -> [Disclosure] { try await server.storage.disclosures(of: sam) }
    }

    @Test(arguments: ServerStoreKind.allCases)
    func entriesPastTheRetentionArePruned_andTheChainStaysVerifiableFromTheOldestKept(storeKind: ServerStoreKind) async throws {
        let center = try await Center(storeKind)
        defer { withExtendedLifetime(center.dir) {} }
        let admin: any ServerAdministration = center.server.storage
        let recorded = try await center.chain()
        #expect(recorded.count >= 3)
        _ = try await Syncer(store: center.patient).sync()
        #expect(try center.patient.disclosureEntries().count == recorded.count)

        // Under 3 years is refused; within the retention nothing goes.
        await #expect(throws: ServerError.self) { try await admin.pruneAccounting(retentionYears: 2, nowMillis: Int64(center.clock.nowMillis())) }
        #expect(try await admin.pruneAccounting(retentionYears: 6, nowMillis: Int64(center.clock.nowMillis())) == 0)

        // Seven years on, every entry is past six years: all go, the last one stays as the start.
        center.clock.advance(byMillis: 7 * Self.year)
        #expect(try await admin.pruneAccounting(retentionYears: 6, nowMillis: Int64(center.clock.nowMillis())) == recorded.count)
        #expect(try await center.chain().isEmpty)
        let start = try #require(try await admin.chainStarts()[center.sam])
        #expect(start.sequence == recorded.last?.sequence && start.hash == hexString(recorded.last?.hash ?? []))

        // The chain goes on from its start, and holds from there.
        try await center.read(7)
        let kept = try await center.chain()
        #expect(kept.first?.sequence == start.sequence + 1 && hexString(kept.first?.previous ?? []) == start.hash)
        #expect(try await admin.brokenChains(kept).isEmpty)
        // The device that saw the pruned entries goes on, and its check holds.
        let report = try await Syncer(store: center.patient).sync()
        #expect(report.accountingBrokenAt == nil && report.disclosuresReceived == kept.count)
        let check = try await Syncer(store: center.patient).verifyAccounting()
        #expect(check.brokenAt == nil && check.entries == kept.count)
        // A new device of Sam's never saw them: it starts from the start.
        let laptop = try await center.server.device(center.dir, "laptop", linkedTo: center.patient)
        let first = try await Syncer(store: laptop).sync()
        #expect(first.accountingBrokenAt == nil && first.disclosuresReceived == kept.count)
        #expect(try await Syncer(store: laptop).verifyAccounting().brokenAt == nil)

        // An edit after the start is still found.
        if let sqlite = try? center.server.sqlite {
            try await sqlite.pool.write { db in try db.execute(sql: "UPDATE disclosure SET at = at + 1") }
            #expect(try await Syncer(store: center.patient).verifyAccounting().brokenAt == kept.first?.sequence)
        }
    }

    @Test(arguments: ServerStoreKind.allCases)
    func aChainCutShorterThanThreeYears_isFoundByThePatientsDevices(storeKind: ServerStoreKind) async throws {
        let center = try await Center(storeKind)
        defer { withExtendedLifetime(center.dir) {} }
        _ = try await Syncer(store: center.patient).sync()
        #expect(try await Syncer(store: center.patient).verifyAccounting().brokenAt == nil)
        // An administrator prunes entries a few seconds old, through the store itself.
        let recorded = try await center.chain()
        _ = try await center.server.storage.pruneDisclosures(recordedBefore: Int64(center.clock.nowMillis()) + 1)
        #expect(try await center.chain().isEmpty)
        // The device that holds them, and a new device that never saw them, both tell.
        let check = try await Syncer(store: center.patient).verifyAccounting()
        #expect(check.brokenAt != nil)
        try await center.read(9)
        let laptop = try await center.server.device(center.dir, "laptop", linkedTo: center.patient)
        let report = try await Syncer(store: laptop).sync()
        #expect(report.accountingBrokenAt != nil, "entries pruned before 3 years are entries removed")
        #expect(recorded.count >= 3)
    }

    /// An administrator who cuts recent entries and writes an old time into the chain's
    /// start: the server's word on that time is not believed over what the device holds.
    @Test func aForgedOldStart_isFoundByTheDeviceThatHeldTheCutEntries() async throws {
        let center = try await Center(.sqlite)
        defer { withExtendedLifetime(center.dir) {} }
        _ = try await Syncer(store: center.patient).sync()
        let held = try center.patient.disclosureEntries().count
        try await center.read(5)
        try await center.read(6)
        let chain = try await center.chain()
        let last = try #require(chain.last)
        #expect(last.sequence > Int64(held))
        let sqlite = try center.server.sqlite
        try await sqlite.pool.write { db in
            try db.execute(
                sql: "INSERT INTO disclosure_start (subject, seq, hash, at) VALUES (?, ?, ?, ?)",
                arguments: [Data(center.sam.bytes), last.sequence, Data(last.hash), 946_684_800_000])
            try db.execute(sql: "DELETE FROM disclosure WHERE subject = ?", arguments: [Data(center.sam.bytes)])
        }
        let report = try await Syncer(store: center.patient).sync()
        #expect(report.accountingBrokenAt == 1, "the device holds entry 1, recorded seconds ago")
        #expect(try await Syncer(store: center.patient).verifyAccounting().brokenAt == 1)
    }

    /// A start in the middle of a chain: entries recorded before the cutoff go, the later
    /// ones stay and follow from the start; a device behind the start goes on from it.
    @Test(arguments: ServerStoreKind.allCases)
    func aStartInTheMiddle_keepsTheLaterEntries(storeKind: ServerStoreKind) async throws {
        let center = try await Center(storeKind)
        defer { withExtendedLifetime(center.dir) {} }
        let admin: any ServerAdministration = center.server.storage
        let old = try await center.chain()
        center.clock.advance(byMillis: 4 * Self.year)
        try await center.read(8)
        try await center.read(9)
        let recent = try await center.chain().filter { $0.sequence > old.last?.sequence ?? 0 }
        #expect(recent.count >= 2)
        // Three years on, the old entries are past a 6-year retention, the recent ones not.
        center.clock.advance(byMillis: 3 * Self.year)
        #expect(try await admin.pruneAccounting(retentionYears: 6, nowMillis: Int64(center.clock.nowMillis())) == old.count)
        let kept = try await center.chain()
        #expect(kept.map(\.sequence) == recent.map(\.sequence))
        #expect(try await admin.chainStarts()[center.sam]?.sequence == old.last?.sequence)
        #expect(try await admin.brokenChains(kept).isEmpty)
        // Sam's phone held the old entries: it goes on past the start.
        let report = try await Syncer(store: center.patient).sync()
        let phoneTail = try center.patient.disclosureEntries().last?.sequence
        #expect(report.accountingBrokenAt == nil && phoneTail == kept.last?.sequence)
        #expect(try await Syncer(store: center.patient).verifyAccounting().brokenAt == nil)
        let laptop = try await center.server.device(center.dir, "laptop", linkedTo: center.patient)
        #expect(try await Syncer(store: laptop).sync().disclosuresReceived == recent.count)
        #expect(try await Syncer(store: laptop).verifyAccounting().brokenAt == nil)
    }
}
