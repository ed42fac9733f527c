import Foundation
import TandemCore
import TandemTestSupport
import TandemWorkload
import Testing

/// Runs every hand-written scenario in `Fixtures/merge/` in many delivery orders, with
/// duplicates, and checks its expected result each time.
@Suite("Merge fixtures")
struct MergeFixtureTests {
    struct Scenario: CustomTestStringConvertible {
        let name: String
        let changes: [Change]
        let expectations: [String]
        var testDescription: String { name }
    }

    static func scenarios() throws -> [Scenario] {
        try FixtureFiles.files("merge", ext: "merge").map { url in
            var section = ""
            var changes: [Change] = []
            var expectations: [String] = []
            for raw in try FixtureFiles.text(url).split(separator: "\n") {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.isEmpty || line.hasPrefix("#") { continue }
                if line == "changes:" || line == "expect:" { section = line; continue }
                if section == "changes:" { changes.append(try Notation.change(line)) } else { expectations.append(line) }
            }
            return Scenario(name: url.deletingPathExtension().lastPathComponent, changes: changes, expectations: expectations)
        }
    }

    @Test func everyScenarioFileHasChangesAndExpectations() throws {
        let scenarios = try Self.scenarios()
        #expect(scenarios.count >= 8)
        for scenario in scenarios {
            #expect(!scenario.changes.isEmpty && !scenario.expectations.isEmpty, "\(scenario.name)")
        }
    }

    @Test(arguments: try scenarios())
    func scenario_holdsInEveryDeliveryOrder(_ scenario: Scenario) throws {
        var rng = SeededGenerator(seed: 42)
        var reference: [UInt8]? = nil
        for round in 0..<120 {
            var delivery = scenario.changes.shuffled(using: &rng)
            if round % 3 == 1 { delivery += delivery.shuffled(using: &rng).prefix(3) }
            if round == 0 { delivery = scenario.changes }
            var state = ReplicaState()
            state.apply(delivery)
            try check(scenario, state)
            let dump = state.canonicalDump()
            if let reference { #expect(dump == reference, "\(scenario.name): delivery order changed the result") }
            reference = dump
        }
    }

    func check(_ scenario: Scenario, _ state: ReplicaState) throws {
        for line in scenario.expectations {
            let words = line.split(separator: " ", maxSplits: 3).map(String.init)
            let recordID: RecordID = try Notation.id(Substring(words[0]))
            let record = try #require(state[recordID], "\(scenario.name): no record \(words[0])")
            switch words.count >= 2 ? words[1] : "" {
            case "deleted": #expect(record.isDeleted, "\(scenario.name): \(line)")
            case "live": #expect(!record.isDeleted, "\(scenario.name): \(line)")
            case "fields": #expect(record.fields.count == Int(words[3]), "\(scenario.name): \(line)")
            case "create":
                #expect(record.create?.id == (try Notation.changeID(Substring(words[3]))), "\(scenario.name): \(line)")
            default:
                let field = try FieldName(words[1])
                let kind = try #require(MergeKind(name: words[2]))
                let equals = try #require(line.firstIndex(of: "="))
                let expected = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
                if kind == .mv {
                    let values = record.register(field)?.frontier.map(\.value) ?? []
                    #expect(values == (try Notation.valueList(expected)), "\(scenario.name): \(line)")
                } else {
                    #expect(record.value(field, kind: kind) == (try Notation.value(expected)), "\(scenario.name): \(line)")
                }
            }
        }
    }
}
