@testable import TandemCore
import TandemTestSupport
import TandemWorkload
import Testing

/// Invariant 1 (DESIGN.md): replicas that have seen the same changes hold identical
/// records, whatever the order, duplication or partition of delivery.
///
/// Modelled on cr-sqlite's `test_sync_prop.py`: several replicas make random edits
/// (concurrent edits of one field, symptom additions and removals, tags, deletions, text
/// edits and conflict resolutions) through the real `ChangeWriter`, exchange random,
/// shuffled, duplicated subsets of what they know, then exchange everything.
@Suite("Convergence")
struct ConvergenceTests {
    /// 1,000 cases in the normal run; `TANDEM_CONVERGENCE_CASES` for a soak.
    static let cases = FixtureFiles.environmentInt("TANDEM_CONVERGENCE_CASES") ?? 1000
    static let shards = 8

    struct Replica {
        var writer: ChangeWriter
        var state: ReplicaState
        /// Every change this replica has seen, to pass on to others.
        var log: [Change] = []
        var seen: Set<[UInt8]> = []

        mutating func receive(_ changes: [Change]) {
            state.apply(changes)
            writer.observe(changes)
            for change in changes where seen.insert(change.canonicalBytes).inserted { log.append(change) }
        }
    }

    /// Runs one seeded case; returns whether every replica's dump matched.
    static func run(seed: UInt64, mutantOnFirstReplica: Bool = false) throws -> Bool {
        var rng = SeededGenerator(seed: seed)
        let count = Int.random(in: 3...4, using: &rng)
        var replicas: [Replica] = (0..<count).map { index in
            let id: ReplicaID = (try? Notation.id(Substring("R\(index)"))) ?? ReplicaID(high: 0, low: UInt64(index))
            let rules = mutantOnFirstReplica && index == 0 ? MergeRules(reverseReplicaTieBreak: true) : .standard
            return Replica(writer: ChangeWriter(replica: id), state: ReplicaState(rules: rules))
        }
        var wall: UInt64 = 1_767_571_200_000
        var records: [RecordID] = []
        for _ in 0..<Int.random(in: 20...50, using: &rng) {
            // A slow clock: equal wall times across replicas are common.
            wall += UInt64.random(in: 0...2, using: &rng)
            let r = Int.random(in: 0..<count, using: &rng)
            let roll = Int.random(in: 0..<100, using: &rng)
            if roll < 20 {
                let source = Int.random(in: 0..<count, using: &rng)
                var delivery = replicas[source].log.filter { _ in rng.chance(0.6) }.shuffled(using: &rng)
                delivery += delivery.prefix(Int.random(in: 0...3, using: &rng))
                replicas[r].receive(delivery)
                continue
            }
            var edit = JournalEdit()
            var record: RecordID
            var current: RecordState? = nil
            if records.isEmpty || roll < 30 {
                record = RecordID.random(using: &rng)
                records.append(record)
                edit.mood = Int.random(in: 0...10, using: &rng)
            } else {
                record = rng.pick(records)
                current = replicas[r].state[record]
                switch roll {
                case 30..<50: edit.mood = Int.random(in: 0...10, using: &rng)
                case 50..<60: edit.addSymptoms = [rng.pick([Symptom.nausea, .tremor, .chills])]
                case 60..<68: edit.removeSymptoms = [rng.pick([Symptom.nausea, .tremor, .chills])]
                case 68..<73: edit.addTags = [rng.pick(["family", "Family ", "work"])]
                case 73..<76: edit.removeTags = [rng.pick(["family", "work"])]
                case 76..<95: edit.text = rng.pick(["a", "b", "c", "d", "e"]) + "\(roll)"
                default:
                    guard current?.isDeleted != true else { continue }
                    let changes = try replicas[r].writer.write(.delete(.journal), to: record, current: current, wallMillis: wall)
                    replicas[r].receive(changes)
                    continue
                }
            }
            if current?.isDeleted == true { continue }
            let changes = try replicas[r].writer.write(try edit.recordEdit(), to: record, current: current, wallMillis: wall)
            replicas[r].receive(changes)
        }
        // Full exchange: everyone gets everything, shuffled.
        let everything = replicas.flatMap(\.log)
        for index in replicas.indices { replicas[index].receive(everything.shuffled(using: &rng)) }
        let dumps = replicas.map { $0.state.canonicalDump() }
        return dumps.allSatisfy { $0 == dumps[0] }
    }

    @Test(arguments: 0..<shards)
    func replicas_convergeAfterFullExchange(shard: Int) throws {
        let perShard = (Self.cases + Self.shards - 1) / Self.shards
        try forEachSeed(perShard, base: 1000 + UInt64(shard)) { seed in
            let converged = try Self.run(seed: seed)
            #expect(converged, "diverged: seed \(seed)")
        }
    }

    /// Proves the convergence test can fail: with the replica tie-break reversed on one
    /// replica, some case must diverge.
    @Test func reversedTieBreakOnOneReplica_isDetected() throws {
        var detected = 0
        try forEachSeed(200, base: 77) { seed in
            if try !Self.run(seed: seed, mutantOnFirstReplica: true) { detected += 1 }
        }
        #expect(detected > 0)
    }

    /// The workload generator's own journals converge too, delivered in any order.
    @Test func workload_convergesInAnyOrder() throws {
        let workload = try Workload.generate(.init(patients: 10, days: 30, seed: 3))
        var rng = SeededGenerator(seed: 9)
        var inOrder = ReplicaState()
        inOrder.apply(workload.changes)
        var shuffled = ReplicaState()
        shuffled.apply(workload.changes.shuffled(using: &rng))
        #expect(inOrder.canonicalDump() == shuffled.canonicalDump())
        #expect(inOrder.records.values.contains { $0.register("text")?.isConflict == true }, "the workload has a text conflict")
    }
}
