import ArgumentParser
import Foundation
import TandemCompression
import TandemCore
import TandemWorkload

/// `tandem demo`: generates synthetic journals and shows replicas converging.
///
/// Prints counts and sizes only, never journal content, though the content is synthetic.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Generate synthetic journals and notes, deliver them to replicas in different orders, and check that they converge."
    )

    @Option(help: "Patients to simulate (1-10000).")
    var patients = 20

    @Option(help: "Days to simulate (1-3650).")
    var days = 30

    @Option(help: "Seed of the generator: the same seed gives the same data.")
    var seed: UInt64 = 1

    @Option(help: "Changes per batch on the wire (1-10000).")
    var batch = 100

    func validate() throws {
        guard (1...10_000).contains(patients) else { throw ValidationError("--patients must be from 1 to 10000.") }
        guard (1...3650).contains(days) else { throw ValidationError("--days must be from 1 to 3650.") }
        guard (1...10_000).contains(batch) else { throw ValidationError("--batch must be from 1 to 10000.") }
    }

    func run() throws {
        let start = Date()
        let workload = try Workload.generate(.init(patients: patients, days: days, seed: seed))
        let changes = workload.changes
        print("Generated \(changes.count) changes: \(patients) patients on \(patients * 2) devices, \(workload.mentors.count) mentors, \(days) days.")

        // Through the wire format: encode, deflate, inflate, decode.
        var wireBytes = 0
        var received: [Change] = []
        received.reserveCapacity(changes.count)
        for start in stride(from: 0, to: changes.count, by: batch) {
            let encoded = ChangeBatch(Array(changes[start..<min(start + batch, changes.count)])).encoded()
            let packed = try Deflate.compress(encoded)
            wireBytes += packed.count
            received += try ChangeBatch(decoding: try Deflate.decompress(packed, limit: ChangeBatch.Limits.default.maxBytes)).changes
        }
        print("Wire: \(wireBytes) bytes deflated, \(String(format: "%.1f", Double(wireBytes) / Double(max(1, changes.count)))) bytes per change at \(batch) per batch.")

        // Three replicas: in order, reversed, shuffled with duplicates.
        var rng = SeededGenerator(seed: seed &+ 1)
        var inOrder = ReplicaState()
        inOrder.apply(received)
        var reversed = ReplicaState()
        reversed.apply(received.reversed())
        var shuffled = ReplicaState()
        shuffled.apply((received + received.prefix(received.count / 10)).shuffled(using: &rng))
        let dumps = [inOrder, reversed, shuffled].map { $0.canonicalDump() }
        let converged = dumps.allSatisfy { $0 == dumps[0] }

        let records = inOrder.records.values
        let entries = records.filter { JournalEntry($0) != nil }.count
        let notes = records.filter { MentorNote($0) != nil }.count
        let consents = records.filter { Consent($0) != nil }.count
        let deleted = records.filter(\.isDeleted).count
        let conflicts = records.filter { $0.register("text")?.isConflict == true }.count
        print("Records: \(entries) journal entries, \(notes) mentor notes, \(consents) consents, \(deleted) deleted; \(conflicts) open text conflicts.")
        print("Replicas fed in order, reversed and shuffled with duplicates: \(converged ? "identical" : "DIVERGED") (\(dumps[0].count)-byte canonical dump).")
        print("Done in \(String(format: "%.2f", Date().timeIntervalSince(start))) s.")
        if !converged { throw ExitCode.failure }
    }
}
