import ArgumentParser
import Foundation
import TandemCompression
import TandemCore
import TandemWorkload

/// Bytes per change on the wire for a metrics-only workload: each device's own stream cut
/// into batches of 10, 100 and 1,000 changes, raw and raw-deflated (what a push carries).
/// Sizes are deterministic (seeded workload, zlib level 6).
struct WireSizeBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wire-size",
        abstract: "Bytes per change, compressed and not, for metrics-only batches of 10, 100 and 1,000 changes."
    )

    @Option(help: "Patients in the workload.")
    var patients = 10

    @Option(help: "Days of journal per patient.")
    var days = 240

    func run() throws {
        let workload = try Workload.generate(.init(patients: patients, days: days, seed: 2026, metricsOnly: true))
        let byReplica = Dictionary(grouping: workload.changes, by: \.replica)
        print("Metrics-only workload: \(workload.changes.count) changes from \(byReplica.count) devices (\(patients) patients × \(days) days).")
        print("batch   changes   raw B/change   deflated B/change   target ≤ 16 (from 100)")
        for size in [10, 100, 1_000] {
            var raw = 0
            var compressed = 0
            var count = 0
            for replica in byReplica.keys.sorted() {
                let stream = byReplica[replica] ?? []
                // Every change counts, the last, partial batch of each device too.
                for start in stride(from: 0, to: stream.count, by: size) {
                    let end = min(start + size, stream.count)
                    let bytes = ChangeBatch(Array(stream[start..<end])).encoded()
                    raw += bytes.count
                    compressed += try Deflate.compress(bytes).count
                    count += end - start
                }
            }
            let perChange = Double(compressed) / Double(count)
            let verdict = size < 100 ? "—" : (perChange <= 16 ? "met" : "NOT met")
            print("\(String(size).padding(toLength: 8, withPad: " ", startingAt: 0))\(String(count).padding(toLength: 10, withPad: " ", startingAt: 0))\(format(Double(raw) / Double(count)).padding(toLength: 15, withPad: " ", startingAt: 0))\(format(perChange).padding(toLength: 20, withPad: " ", startingAt: 0))\(verdict)")
        }
    }
}
