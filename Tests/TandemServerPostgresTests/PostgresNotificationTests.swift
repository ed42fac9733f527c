import Foundation
import TandemCore
import TandemProtocol
import TandemServer
@testable import TandemServerPostgres
import TandemStore
import TandemTestSupport
import Testing

/// Instances on one database hear each other through `LISTEN`/`NOTIFY`, not by looking:
/// the listening instance here looks at the feed only once a minute, so only a
/// notification can wake it within the test's bound.
@Suite("PostgreSQL: notifications between instances")
struct PostgresNotificationTests {
    @Test func anotherInstancesCommitAndRevocation_wakeThisOneAtOnce() async throws {
        try await TestCluster.withDatabase { location in
            let dir = try TemporaryDirectory("pg-notify")
            let writer = try PostgresServerStorage(location: location, connections: 2)
            let listener = try PostgresServerStorage(location: location, connections: 2, poll: .seconds(60))
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
            let waited = Task { () -> Duration in
                let started = ContinuousClock.now
                try await listener.awaitCommit(after: position, timeout: .seconds(45))
                return ContinuousClock.now - started
            }
            var edit = JournalEdit()
            edit.mood = 5
            _ = try await writer.push(try phone.write(try edit.recordEdit(), to: nil, clock: clock).1, from: principal, repush: false,
                                      nowMillis: clock.nowMillis(), maxSkewMillis: 60_000)
            let commitWait = try await waited.value
            #expect(commitWait < .seconds(20), "woken after \(commitWait): by its minute's look, not a notification")
            #expect(try await listener.head() != position)

            // A revocation on the writer wakes the listener's live connections' check.
            let revocationWait = Task { () -> Duration in
                let started = ContinuousClock.now
                await listener.awaitRevocation(timeout: .seconds(45))
                return ContinuousClock.now - started
            }
            try await Task.sleep(for: .milliseconds(100))
            let device = try #require(try await writer.devices(of: nil).first)
            try await writer.revokeDevice(try RecordID(hex: device.id))
            let revoked = await revocationWait.value
            #expect(revoked < .seconds(20), "woken after \(revoked): by its timeout, not a notification")
            withExtendedLifetime(writer) {}
        }
    }
}
