import Foundation
import TandemClient
import TandemCore
@testable import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// A pull uses a member's grants and directory again (`SharingMemo`) only while the
/// snapshot shows the store's sharing version they were evaluated at, and while no consent
/// behind them has expired since (docs/security-model.md, "Reading is consent-scoped").
/// Each test runs against every store: the version is the stores' triggers'.
@Suite("Sharing memo")
struct SharingMemoTests {
    /// The shipped policy, counting its evaluations.
    struct Counting: SharingPolicy {
        let base: ConsentPolicy
        let reusable: Bool
        let count = Locked(0)

        func grants(for principal: Principal, in store: some PullReads) throws -> [Grant] {
            try evaluation(for: principal, in: store).grants
        }

        func evaluation(for principal: Principal, in store: some PullReads) throws -> SharingEvaluation {
            count.withLock { $0 += 1 }
            var evaluation = try base.evaluation(for: principal, in: store)
            if !reusable { evaluation.reuse = nil }
            return evaluation
        }
    }

    @Test(arguments: ServerStoreKind.allCases)
    func theSharingVersion_changesWithEveryConsentNoteAssignmentAndMember_andNotWithAJournalEntry(storeKind: ServerStoreKind) async throws {
        let center = try await ConsentSharingTests.Center(storeKind)
        defer { withExtendedLifetime(center.dir) {} }
        let storage = center.server.storage
        let admin: any ServerAdministration = storage
        func version() async throws -> [UInt8] { try await storage.read { try $0.sharingVersion() } }
        func changes(_ what: String, _ step: () async throws -> Void) async throws {
            let before = try await version()
            try await step()
            let after = try await version()
            #expect(before != after, "\(what) changes the sharing version")
            #expect(after.count == 16)
        }

        var consent = RecordID.random()
        try await changes("a consent granted") { consent = try await center.grant(.metrics) }
        try await changes("a consent revoked") { try await center.revoke(consent) }
        try await changes("a note written") {
            var edit = NoteEdit()
            edit.patient = center.sam
            edit.text = "A note."
            _ = try center.mentor.write(try edit.recordEdit(), to: nil, clock: SystemWallClock())
            _ = try await Syncer(store: center.mentor).sync()
        }
        let mia = try await admin.member(named: "Mia"), sam = try await admin.member(named: "Sam")
        try await changes("an unassignment") { try await admin.unassign(.mentor, carer: mia, member: sam, nowMillis: 0) }
        try await changes("an assignment") { _ = try await admin.assign(.mentor, carer: mia, member: sam, nowMillis: 0) }
        try await changes("a new member") { _ = try await center.server.device(center.dir, "ada", member: "Ada") }

        let before = try await version()
        _ = try center.patient.write(try moodEntry(4), to: nil, clock: SystemWallClock())
        _ = try await Syncer(store: center.patient).sync()
        #expect(try await version() == before, "a journal entry reads as no change to sharing: a mentor's kept grants stand")
    }

    @Test(arguments: ServerStoreKind.allCases)
    func aKeptView_standsWhileTheVersionAndTheConsentsDatesDo_andIsEvaluatedAfreshOtherwise(storeKind: ServerStoreKind) async throws {
        let center = try await ConsentSharingTests.Center(storeKind)
        defer { withExtendedLifetime(center.dir) {} }
        let storage = center.server.storage
        let policy = Counting(base: ConsentPolicy(clock: center.clock), reusable: true)
        // Not verified: this test counts the policy's evaluations, which a check would add to.
        let memo = SharingMemo(verify: false)
        let mia = Principal(member: center.mia, role: .mentor, device: nil, replica: nil)
        func pull() async throws -> [Grant] {
            try await storage.pull(for: mia, policy: policy, memo: memo, limit: 100, check: nil) { grants, _, _ in grants.map { _ in 0 } }.grants
        }
        func evaluations() -> Int { policy.count.withLock { $0 } }

        #expect(try await pull().map(\.channel) == [center.mia])
        _ = try await pull()
        #expect(evaluations() == 1, "nothing changed: the kept view is used")

        let hour: Int64 = 3_600_000
        let expires = Int64(center.clock.nowMillis()) + hour
        _ = try await center.grant(.metrics, expiresMillis: expires)
        let granted = try await pull()
        #expect(evaluations() == 2, "a consent granted: evaluated afresh")
        #expect(granted.map(\.channel) == [center.mia, center.sam] && granted.last?.untilMillis == expires)

        _ = try center.patient.write(try moodEntry(6), to: nil, clock: SystemWallClock())
        _ = try await Syncer(store: center.patient).sync()
        #expect(try await pull() == granted)
        #expect(evaluations() == 2, "a journal entry changes no grant: the kept view is used")

        center.clock.advance(byMillis: UInt64(hour - 1))
        _ = try await pull()
        #expect(evaluations() == 2, "the consent stands until its expiry")
        center.clock.advance(byMillis: 1)
        #expect(try await pull().map(\.channel) == [center.mia], "expired at the policy's clock, with no write to the store")
        #expect(evaluations() == 3)

        let consent = try await center.grant(.journal)
        #expect(try await pull().map(\.channel) == [center.mia, center.sam])
        try await center.revoke(consent)
        #expect(try await pull().map(\.channel) == [center.mia], "revoked: in force at the next pull")
        #expect(evaluations() == 5)

        // A clock set back before the evaluation: evaluated afresh.
        center.clock.set(millis: center.clock.nowMillis() - 1)
        _ = try await pull()
        #expect(evaluations() == 6)

        // A policy that gives no span to reuse its grants in is evaluated at every pull (a
        // memo serves one policy: the server's).
        let everyTime = Counting(base: ConsentPolicy(clock: center.clock), reusable: false)
        let itsMemo = SharingMemo(verify: false)
        for _ in 0..<2 {
            _ = try await storage.pull(for: mia, policy: everyTime, memo: itsMemo, limit: 100, check: nil) { grants, _, _ in grants.map { _ in 0 } }
        }
        #expect(everyTime.count.withLock { $0 } == 2)
    }
}
