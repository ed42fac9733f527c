import ArgumentParser
import Foundation
import TandemClient
import TandemCore
import TandemServer
import TandemStore
import TandemWorkload

/// Issue 5's initial-sync benchmark: a new device of a member whose history holds N
/// winning changes syncs from zero over loopback; the baseline is applying the very same
/// changes into a fresh store in the same process, in pages of the pull's size.
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

    @Option(help: "Rounds; the best device time counts.")
    var rounds = 3

    func run() async throws {
        let benchFolder = try BenchFolder()
        defer { benchFolder.remove() }
        let folder = benchFolder.path

        let storage = try SQLiteServerStorage(path: folder + "/center.sqlite")
        let started = now()
        _ = try storage.initialize(staffName: "Bench", nowMillis: UInt64(now() * 1000))
        let (member, winning) = try await Self.fillHistory(storage, atLeast: changes)
        print("History: \(winning) winning changes of one member, stored in \(format(now() - started, 1)) s; server store \(fileBytes(folder + "/center.sqlite")) bytes (\(format(Double(fileBytes(folder + "/center.sqlite")) / Double(winning), 1)) B per held change).")

        let (port, serverTask) = try await startServer(storage)
        defer { serverTask.cancel() }

        var best: DeviceResult? = nil
        for round in 1...rounds {
            let code = try storage.invite(role: .patient, name: "Bench", member: member, nowMillis: UInt64(now() * 1000))
            let serverCPU = cpuSeconds()
            let output = try runSelf(["initial-sync-device", "--server", "http://127.0.0.1:\(port)", "--code", code, "--work", folder + "/device-\(round)"])
            let serverSeconds = cpuSeconds() - serverCPU
            guard let line = output.split(separator: "\n").last, var result = try? JSONDecoder().decode(DeviceResult.self, from: Data(line.utf8)) else {
                throw BenchError.childFailed("device output: \(output)")
            }
            result.serverCPU = serverSeconds
            print("Round \(round): sync \(format(result.syncSeconds, 3)) s, local apply \(format(result.applySeconds, 3)) s, ratio \(format(result.syncSeconds / result.applySeconds, 2)), received \(result.bytesReceived) B (\(format(Double(result.bytesReceived) / Double(result.pulled), 2)) B/change), device CPU \(format(result.deviceCPU, 2)) s, server CPU \(format(serverSeconds, 2)) s")
            if best == nil || result.syncSeconds < best!.syncSeconds { best = result }
        }
        guard let best else { return }
        print("""

        Initial sync of \(best.pulled) changes (best of \(rounds)):
          sync over loopback   \(format(best.syncSeconds, 3)) s   (target ≤ 2 s: \(best.syncSeconds <= 2 ? "met" : "NOT met"))
          local apply          \(format(best.applySeconds, 3)) s
          ratio                \(format(best.syncSeconds / best.applySeconds, 2))     (target ≤ 1.3: \(best.syncSeconds / best.applySeconds <= 1.3 ? "met" : "NOT met"))
          bytes received       \(best.bytesReceived) (\(format(Double(best.bytesReceived) / Double(best.pulled), 2)) B/change), sent \(best.bytesSent)
          CPU                  device \(format(best.deviceCPU, 2)) s, server \(format(best.serverCPU, 2)) s
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
        let cpu = cpuSeconds()
        let started = now()
        let report = try await Syncer(store: store).sync()
        let syncSeconds = now() - started
        let deviceCPU = cpuSeconds() - cpu

        // The same changes, in the same pages, into a fresh store.
        let held = try store.state().heldChanges
        let local = try ReplicaStore.create(at: work + "/local.sqlite", name: "local", role: .patient, wallMillis: wall.nowMillis())
        let applyStarted = now()
        var start = 0
        while start < held.count {
            let page = Array(held[start..<min(start + 2_000, held.count)])
            try local.apply(page)
            start += page.count
        }
        let applySeconds = now() - applyStarted
        let result = DeviceResult(
            pulled: report.pulled, syncSeconds: syncSeconds, applySeconds: applySeconds, bytesReceived: report.bytesReceived,
            bytesSent: report.bytesSent, deviceCPU: deviceCPU)
        print(String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
    }
}
