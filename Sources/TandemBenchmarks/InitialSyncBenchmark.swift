import ArgumentParser
import Foundation
import Glibc
import GRDB
import TandemClient
import TandemCore
import TandemProtocol
import TandemServer
import TandemStore
import TandemWorkload

/// Issue 5's initial-sync benchmark: a new device of a member whose history holds N
/// winning changes syncs from zero over loopback; the baseline is applying the very same
/// changes into a fresh store in the device's process, in the order and page sizes the
/// pull delivered them.
///
/// The server runs in this process; the device (the load) runs in a child process of its
/// own, which reports its time, bytes on the wire and CPU.
struct InitialSyncBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "initial-sync",
        abstract: "A new device pulls a member history of N winning changes over loopback; compared with a local apply."
    )

    @Option(help: "Winning changes in the member's history (at least).")
    var changes = 100_000

    @Option(help: "Rounds; their median counts.")
    var rounds = 7

    func run() async throws {
        let benchFolder = try BenchFolder()
        defer { benchFolder.remove() }
        let folder = benchFolder.path

        let storage = try SQLiteServerStorage(path: folder + "/center.sqlite")
        let started = now()
        _ = try storage.initialize(staffName: "Bench", nowMillis: UInt64(now() * 1000))
        let (member, winning) = try await Self.fillHistory(storage, atLeast: changes)
        print("History: \(winning) winning changes of one member, stored in \(format(now() - started, 1)) s; server store \(fileBytes(folder + "/center.sqlite")) bytes (\(format(Double(fileBytes(folder + "/center.sqlite")) / Double(winning), 1)) B per held change).")

        // What the store takes without its WAL and free pages: a compacted copy, by table.
        let compact = folder + "/compact.sqlite"
        try storage.backup(to: compact)
        let compacted = try DatabaseQueue(path: compact)
        let tables = try await compacted.read { db in
            try Row.fetchAll(db, sql: "SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC LIMIT 6")
                .map { "\($0["name"] as String) \(format(Double($0["bytes"] as Int64) / Double(winning), 1))" }
        }
        print("Compacted copy: \(fileBytes(compact)) bytes (\(format(Double(fileBytes(compact)) / Double(winning), 1)) B per held change); largest, B per held change: \(tables.joined(separator: ", ")).")

        let (port, serverTask) = try await startServer(storage)
        defer { serverTask.cancel() }

        var results: [DeviceResult] = []
        for round in 1...rounds {
            let code = try storage.invite(role: .patient, name: "Bench", member: member, nowMillis: UInt64(now() * 1000))
            let serverCPU = cpuSeconds()
            let output = try runSelf(["initial-sync-device", "--server", "http://127.0.0.1:\(port)", "--code", code, "--work", folder + "/device-\(round)"])
            let serverSeconds = cpuSeconds() - serverCPU
            guard let line = output.split(separator: "\n").last, var result = try? JSONDecoder().decode(DeviceResult.self, from: Data(line.utf8)) else {
                throw BenchError.childFailed("device output: \(output)")
            }
            result.serverCPU = serverSeconds
            print("Round \(round): sync \(format(result.syncSeconds, 3)) s, local apply \(format(result.applySeconds, 3)) s, ratio \(format(result.syncSeconds / result.applySeconds, 2)) (sorted by record: \(format(result.sortedApplySeconds, 3)) s), received \(result.bytesReceived) B (\(format(Double(result.bytesReceived) / Double(result.pulled), 2)) B/change), device CPU \(format(result.deviceCPU, 2)) s, server CPU \(format(serverSeconds, 2)) s")
            results.append(result)
        }
        guard let last = results.last else { return }
        // This machine's disk makes single rounds move by a third: the median of the rounds
        // judges the targets, the best of each is shown beside it.
        func median(_ values: [Double]) -> Double {
            let sorted = values.sorted()
            return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }
        let sync = median(results.map(\.syncSeconds))
        let ratio = median(results.map { $0.syncSeconds / $0.applySeconds })
        print("""

        Initial sync of \(last.pulled) changes (median of \(rounds) rounds; best in brackets):
          sync over loopback   \(format(sync, 3)) s (\(format(results.map(\.syncSeconds).min()!, 3)))   target ≤ 2 s: \(sync <= 2 ? "met" : "NOT met")
          local apply          \(format(median(results.map(\.applySeconds)), 3)) s (\(format(results.map(\.applySeconds).min()!, 3)))   the same changes in pull order and page sizes
          ratio                \(format(ratio, 2))   target ≤ 1.3: \(ratio <= 1.3 ? "met" : "NOT met")
          sorted by record     \(format(median(results.map(\.sortedApplySeconds)), 3)) s (\(format(results.map(\.sortedApplySeconds).min()!, 3)))   pages of 2,000, the earlier baseline; ratio \(format(median(results.map { $0.syncSeconds / $0.sortedApplySeconds }), 2))
          bytes received       \(last.bytesReceived) (\(format(Double(last.bytesReceived) / Double(last.pulled), 2)) B/change), sent \(last.bytesSent)
          CPU                  device \(format(median(results.map(\.deviceCPU)), 2)) s, server \(format(median(results.map(\.serverCPU)), 2)) s
        """)
    }

    /// Pushes a seeded patient's journal (one device, enrolled with the workload's replica
    /// id) so that the member's channel holds at least `target` winning changes; returns the
    /// member and the count.
    static func fillHistory(_ storage: SQLiteServerStorage, atLeast target: Int) async throws -> (MemberID, Int) {
        func workload(days: Int) throws -> Workload {
            var options = Workload.Options(patients: 1, days: days, seed: 7)
            options.devicesPerPatient = 1
            options.patientsPerMentor = 0
            // A history that ends before today: nothing is stamped in the future.
            options.startMillis = UInt64(now() * 1000) - UInt64(days + 2) * 86_400_000
            return try Workload.generate(options)
        }
        func winning(_ workload: Workload) -> Int {
            var state = ReplicaState()
            state.apply(workload.changes)
            return state.heldChanges.count
        }
        let probe = try workload(days: 30)
        let days = 33 * target / max(winning(probe), 1) + 30
        let history = try workload(days: days)
        let replica = history.patients[0].replicas[0]
        let code = try storage.invite(role: .patient, name: "Bench", nowMillis: UInt64(now() * 1000))
        let enrollment = try await storage.enroll(
            codeHash: Secrets.hashCode(code), replica: replica, deviceName: "writer", tokenHash: Secrets.hash("bench-writer"),
            expectedRole: nil, expectedMember: nil, nowMillis: UInt64(now() * 1000))
        let principal = try await storage.authenticate(tokenHash: Secrets.hash("bench-writer"))
        let member = try MemberID(hex: enrollment.member)
        let mine = history.changes.filter { $0.replica == replica }
        var start = 0
        while start < mine.count {
            let batch = Array(mine[start..<min(start + 1_000, mine.count)])
            do {
                _ = try await storage.push(batch, from: principal, repush: false, nowMillis: UInt64(now() * 1000), maxSkewMillis: 60_000)
            } catch ServerError.refused(let refusals, _) {
                throw BenchError.badInput("history refused: " + Set(refusals.map(\.reason)).sorted().joined(separator: "; "))
            }
            start += batch.count
        }
        return (member, try storage.state(of: member).heldChanges.count)
    }
}

struct DeviceResult: Codable {
    var pulled: Int
    var syncSeconds: Double
    var applySeconds: Double
    var sortedApplySeconds: Double
    var bytesReceived: Int
    var bytesSent: Int
    var deviceCPU: Double
    var serverCPU: Double = 0
}

/// The device side, in its own process: enroll a fresh home, time the sync, then time
/// applying the same changes into another fresh store.
struct InitialSyncDevice: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "initial-sync-device", shouldDisplay: false)

    @Option var server: String
    @Option var code: String
    @Option var work: String

    func run() async throws {
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let wall = SystemWallClock()
        let store = try ReplicaStore.create(at: work + "/device.sqlite", name: "bench", role: .patient, wallMillis: wall.nowMillis())
        _ = try await Syncer.enroll(store: store, server: server, code: code, deviceName: "bench", role: nil, allowInsecure: false)
        // Each timed phase starts with no dirty pages of an earlier phase being written back
        // (each phase writes hundreds of MiB through its WAL; the first measurements of this
        // benchmark moved by a third with the order of the phases).
        Glibc.sync()
        let cpu = cpuSeconds()
        let started = now()
        let report = try await Syncer(store: store).sync()
        let syncSeconds = now() - started
        let deviceCPU = cpuSeconds() - cpu

        // The baseline: the same changes applied into a fresh store, in the order the pull
        // brought them and in pages of the sizes the pull used. The member's history has
        // one writer, who pushed in the order it wrote, so the server holds (and sends) the
        // winners in timestamp order.
        let held = try store.state().heldChanges
        let inPullOrder = held.sorted { ($0.timestamp, $0.replica) < ($1.timestamp, $1.replica) }
        let applySeconds = try Self.applyLocally(inPullOrder, into: work + "/local.sqlite") { Syncer.pageLimit($0) }
        // The previous baseline, for comparison: sorted by record id (as a store lists its
        // state), in pages of 2,000. Neighbouring records share B-tree pages, so this order
        // writes far fewer pages than any order a pull delivers.
        let sortedSeconds = try Self.applyLocally(held, into: work + "/sorted.sqlite") { _ in 2_000 }
        let result = DeviceResult(
            pulled: report.pulled, syncSeconds: syncSeconds, applySeconds: applySeconds, sortedApplySeconds: sortedSeconds,
            bytesReceived: report.bytesReceived, bytesSent: report.bytesSent, deviceCPU: deviceCPU)
        print(String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
    }

    /// Seconds to apply `changes` into a fresh store at `path`, page `n` holding `size(n)`.
    static func applyLocally(_ changes: [Change], into path: String, size: (Int) -> Int) throws -> Double {
        let store = try ReplicaStore.create(at: path, name: "local", role: .patient, wallMillis: SystemWallClock().nowMillis())
        Glibc.sync()
        let started = now()
        var start = 0
        var page = 0
        while start < changes.count {
            let end = min(start + size(page), changes.count)
            try store.apply(Array(changes[start..<end]))
            start = end
            page += 1
        }
        return now() - started
    }
}
