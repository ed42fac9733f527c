import Foundation
import TandemCore
import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// Group commit: concurrent pushes share one transaction and one fsync, and each batch is
/// still all-or-nothing: a refused batch in a group leaves the others stored.
///
/// On SQLite only: it counts the SQLite store's groups; PostgreSQL's group commit runs under every push of the shared bodies and `SeveralInstancesTests`.
@Suite("Group commit")
struct GroupCommitTests {
    var now: UInt64 { SystemWallClock().nowMillis() }

    @Test func concurrentPushesShareCommits_andARefusedBatchLeavesTheOthersStored() async throws {
        let dir = try TemporaryDirectory()
        let storage = try SQLiteServerStorage(path: dir.path("center.sqlite"))
        _ = try storage.initialize(staffName: "Admin", nowMillis: now)
        var devices: [(store: ReplicaStore, principal: Principal)] = []
        for index in 0..<8 {
            let code = try await storage.invite(role: .patient, name: "Patient \(index)", nowMillis: now)
            let store = try ReplicaStore.create(at: dir.path("phone-\(index).sqlite"), name: "phone", role: .patient, wallMillis: now)
            _ = try await storage.enroll(
                codeHash: Secrets.hashCode(code), replica: store.identity.replica, deviceName: "phone",
                tokenHash: Secrets.hash("token-\(index)"), expectedRole: nil, expectedMember: nil, nowMillis: now)
            devices.append((store, try await storage.authenticate(tokenHash: Secrets.hash("token-\(index)"))))
        }
        // Each device pushes 25 one-entry batches at once; every fifth batch of device 0 also
        // carries a change of device 1's replica, which is refused.
        var batches: [(device: Int, changes: [Change], refused: Bool)] = []
        for round in 0..<25 {
            for (index, device) in devices.enumerated() {
                var edit = JournalEdit()
                edit.mood = round % 11
                var changes = try device.store.write(try edit.recordEdit(), to: nil, clock: SystemWallClock()).1
                let refused = index == 0 && round % 5 == 0
                if refused {
                    var foreign = JournalEdit()
                    foreign.mood = 1
                    changes += try devices[1].store.write(try foreign.recordEdit(), to: nil, clock: SystemWallClock()).1
                }
                batches.append((index, changes, refused))
            }
        }
        let before = storage.groupCommitStatistics
        // Devices push at once; each device its batches in order, as a device does (a
        // batch below its replica's mark would count as a replay).
        let results = await withTaskGroup(of: [(Int, Bool)].self) { group in
            for (index, device) in devices.enumerated() {
                let principal = device.principal
                let mine = batches.enumerated().filter { $0.element.device == index }.map { ($0.offset, $0.element.changes) }
                group.addTask {
                    var results: [(Int, Bool)] = []
                    for (position, changes) in mine {
                        let outcome = try? await storage.push(changes, from: principal, repush: false, nowMillis: SystemWallClock().nowMillis(), maxSkewMillis: 60_000)
                        results.append((position, outcome?.accepted == changes.count))
                    }
                    return results
                }
            }
            var results = [Bool](repeating: false, count: batches.count)
            for await device in group { for (position, accepted) in device { results[position] = accepted } }
            return results
        }
        for (position, batch) in batches.enumerated() {
            #expect(results[position] == !batch.refused, "batch \(position) of device \(batch.device)")
        }
        // What was accepted is stored; nothing of a refused batch is.
        for (index, device) in devices.enumerated() {
            var held = try storage.state(of: device.principal.member)
            let mine = batches.filter { $0.device == index && !$0.refused }.flatMap(\.changes)
            #expect(mine.allSatisfy { !held.apply($0) }, "device \(index)'s accepted changes are held")
            #expect(held.records.count == 25 - (index == 0 ? 5 : 0))
        }
        let after = storage.groupCommitStatistics
        #expect(after.batches - before.batches == batches.count)
        #expect(after.groups - before.groups < batches.count, "pushes shared commits: \(after.groups - before.groups) groups for \(batches.count) batches")
    }
}
