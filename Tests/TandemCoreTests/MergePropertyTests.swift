@testable import TandemCore
import TandemTestSupport
import Testing

@Suite("Merge properties")
struct MergePropertyTests {
    static let cases = FixtureFiles.environmentInt("TANDEM_PROPERTY_CASES") ?? 300

    func state(_ changes: [Change]) -> ReplicaState {
        var state = ReplicaState()
        state.apply(changes)
        return state
    }

    @Test func apply_isIdempotent() {
        forEachSeed(Self.cases, base: 1) { seed in
            var gen = RandomChanges(seed: seed)
            let changes = gen.changes(30)
            let once = state(changes)
            var twice = once
            let changedAgain = twice.apply(changes)
            #expect(changedAgain == 0, "seed \(seed)")
            #expect(twice.canonicalDump() == once.canonicalDump(), "seed \(seed)")
            var merged = once
            let mergeChanged = merged.merge(once)
            #expect(!mergeChanged, "seed \(seed)")
        }
    }

    @Test func apply_isCommutative() {
        forEachSeed(Self.cases, base: 2) { seed in
            var gen = RandomChanges(seed: seed)
            let changes = gen.changes(30)
            let reference = state(changes).canonicalDump()
            for _ in 0..<3 {
                #expect(state(gen.shuffled(changes)).canonicalDump() == reference, "seed \(seed)")
            }
        }
    }

    @Test func merge_isCommutativeAndAssociative() {
        forEachSeed(Self.cases, base: 3) { seed in
            var gen = RandomChanges(seed: seed)
            let (a, b, c) = (state(gen.changes(15)), state(gen.changes(15)), state(gen.changes(15)))
            var ab = a; ab.merge(b)
            var ba = b; ba.merge(a)
            #expect(ab.canonicalDump() == ba.canonicalDump(), "seed \(seed)")
            var abThenC = ab; abThenC.merge(c)
            var bc = b; bc.merge(c)
            var aThenBC = a; aThenBC.merge(bc)
            #expect(abThenC.canonicalDump() == aThenBC.canonicalDump(), "seed \(seed)")
        }
    }

    @Test func mergingStates_equalsApplyingAllChanges() {
        forEachSeed(Self.cases, base: 4) { seed in
            var gen = RandomChanges(seed: seed)
            let first = gen.changes(20)
            let second = gen.changes(20)
            var merged = state(first)
            merged.merge(state(second))
            #expect(merged.canonicalDump() == state(first + second).canonicalDump(), "seed \(seed)")
        }
    }

    @Test func tombstone_beatsEveryEdit_whateverItsTimestamp() throws {
        let create = try Notation.change(#"5.0@A create r - = {collection: "journal"}"#)
        let tombstone = try Notation.change("6.0@A tombstone r - = null")
        let laterEdit = try Notation.change("900.0@B lww r mood = 3")
        for order in [[create, tombstone, laterEdit], [laterEdit, tombstone, create], [tombstone, laterEdit, create]] {
            let result = state(order)
            let record = try #require(result[create.record])
            #expect(record.isDeleted)
            #expect(record.fields.isEmpty)
            #expect(record.create == create)
        }
    }
}
