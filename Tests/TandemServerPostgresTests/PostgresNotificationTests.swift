import Foundation
import TandemCore
import TandemProtocol
import TandemServer
@testable import TandemServerPostgres
import TandemStore
import TandemTestSupport
import Testing

/// Instances on one database hear each other through `LISTEN`/`NOTIFY`, not by looking:
/// the listening instance here looks at the feed only every ten minutes and each wait gives
/// up after five, so only a notification can wake it within the test's bound of four. Each
/// wait is measured from the moment the writer's commit returned (under ThreadSanitizer and
/// a busy suite the push itself took seconds; a CI run once counted 22 s of it against the
/// bound). The bound is loose on purpose: the same run once woke the listener 23 s after a
/// commit, its notification delivered at once but the woken task not scheduled, both of
/// CI's cores busy with the suite's CPU-bound tests.
@Suite("PostgreSQL: notifications between instances")
struct PostgresNotificationTests {
    @Test func anotherInstancesCommitAndRevocation_wakeThisOneAtOnce() async throws {
        try await TestCluster.withDatabase { location in
            let dir = try TemporaryDirectory("pg-notify")
            let writer = try PostgresServerStorage(location: location, connections: 2)
            let listener = try PostgresServerStorage(location: location, connections: 2, poll: .seconds(600))
            let clock = SystemWallClock()
            _ = try await writer.initialize(staffName: "Admin", nowMillis: clock.nowMillis())
            let code = try await writer.invite(role: .patient, name: "Sam", member: nil, nowMillis: clock.nowMillis(), validForMillis: 3_600_000)
            let phone = try ReplicaStore.create(at: dir.path("phone.sqlite"), name: "Sam", role: .patient, wallMillis: clock.nowMillis())
            _ = try await writer.enroll(
                codeHash: Secrets.hashCode(code), replica: phone.identity.replica, deviceName: "phone", tokenHash: Secrets.hash("t"),
                expectedRole: nil, expectedMember: nil, nowMillis: clock.nowMillis())
            let principal = try await writer.authenticate(tokenHash: Secrets.hash("t"))
            try await within(.seconds(30)) { while !listener.listening.isOn { try await Task.sleep(for: .milliseconds(10)) } }

            // A commit on the writer wakes the listener's wait for the feed to move.
            let position = try await listener.head()
            let waited = Task { () -> ContinuousClock.Instant in
                try await listener.awaitCommit(after: position, timeout: .seconds(300))
                return ContinuousClock.now
            }
            var edit = JournalEdit()
            edit.mood = 5
            _ = try await writer.push(try phone.write(try edit.recordEdit(), to: nil, clock: clock).1, from: principal, repush: false,
                                      nowMillis: clock.nowMillis(), maxSkewMillis: 60_000)
            let committed = ContinuousClock.now
            let commitWait = max(.zero, try await waited.value - committed)
            #expect(commitWait < .seconds(240), "woken \(commitWait) after the commit: by its look at the feed, not a notification")
            #expect(try await listener.head() != position)

            // A revocation on the writer wakes the listener's live connections' check, and
            // names whose credentials it revoked (only that member's connections check).
            let heardBefore = listener.revocationsHeard
            let revocationWait = Task { () -> ContinuousClock.Instant in
                await listener.awaitRevocation(timeout: .seconds(300))
                return ContinuousClock.now
            }
            // Time for the wait to begin (a notice that came before it would not count).
            try await Task.sleep(for: .seconds(2))
            let device = try #require(try await writer.devices(of: nil).first)
            try await writer.revokeDevice(try RecordID(hex: device.id))
            let revokedAt = ContinuousClock.now
            let revoked = max(.zero, await revocationWait.value - revokedAt)
            #expect(revoked < .seconds(240), "woken \(revoked) after the revocation: by its timeout, not a notification")
            #expect(listener.membersRevoked(since: heardBefore) == [principal.member])
            withExtendedLifetime(writer) {}
        }
    }
}
