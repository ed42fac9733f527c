import TandemCore
import TandemTestSupport
import Testing

/// No health text rides in a field or collection name (PROTOCOL.md §2.4, §6): a set's
/// element fields are named from the vocabulary or by a hash; unknown collections are
/// refused; a refusal never repeats the name it refused.
@Suite("Field name rules")
struct FieldNameRuleTests {
    @Test(arguments: [
        ("1.0@A lww r symptom.heroin = true", CollectionName.journal),
        ("1.0@A lww r symptom.nausea_and_heroin = true", .journal),
        ("1.0@A lww r tag.relapsed_on_friday = \"x\"", .journal),
        ("1.0@A lww r tag.0123 = \"x\"", .journal),
        ("1.0@A lww r followup.call_my_dealer = \"x\"", .note),
    ])
    func setFieldsOutsideTheirRule_areRefused_withoutRepeatingTheName(_ line: String, _ collection: CollectionName) throws {
        let change = try Notation.change(line)
        #expect {
            try Schema.validate(change, in: collection)
        } throws: { error in
            let text = "\(error)"
            return !text.contains(String(change.field.rawValue.split(separator: ".").last ?? ""))
        }
    }

    @Test func knownElementsAndUnknownPlainFields_pass() throws {
        let tag = SetElement.field(prefix: "tag", normalizedText: "work stress")
        for line in ["1.0@A lww r symptom.nausea = true", "1.0@A lww r \(tag.rawValue) = \"work stress\"", "1.0@A lww r future.lww = 3"] {
            try Schema.validate(try Notation.change(line), in: .journal)
        }
    }

    @Test func aCreateOfAnUnknownCollection_isRefused() throws {
        let create = try Notation.change(#"1.0@A create r - = {collection: "relapse-log"}"#)
        #expect(throws: TandemCoreError.self) { try Schema.validate(create, in: CollectionName("relapse-log")) }
        let tombstone = try Notation.change("2.0@A tombstone r - = null")
        #expect(throws: TandemCoreError.self) { try Schema.validate(tombstone, in: CollectionName("relapse-log")) }
    }

    /// An element is kept as written, in the field its normalized text names: "Call
    /// Friday" shows as written, "call  friday" is the same element, and a value in
    /// another element's field is refused (it could not be removed by its text).
    @Test func elementsAreKeptAsWritten_inTheFieldTheirNormalizedTextNames() throws {
        var note = NoteEdit()
        note.addFollowUps = ["  Call   Friday "]
        let added = try note.recordEdit()
        let field = SetElement.field(prefix: "followup", normalizedText: "call friday")
        #expect(added.items.contains { $0.field == field && $0.value == .string("Call Friday") })
        var removal = NoteEdit()
        removal.removeFollowUps = ["call friday"]
        #expect(try removal.recordEdit().items.contains { $0.field == field && $0.value == .null })

        try Schema.validate(try Notation.change("1.0@A lww r \(field.rawValue) = \"Call Friday\""), in: .note)
        try Schema.validate(try Notation.change("1.0@A lww r \(field.rawValue) = \"call friday\""), in: .note)
        for wrong in ["\"Call Monday\"", "\" Call Friday\"", "\"Call  Friday\""] {
            #expect(throws: TandemCoreError.self, "\(wrong)") {
                try Schema.validate(try Notation.change("1.0@A lww r \(field.rawValue) = \(wrong)"), in: .note)
            }
        }
    }
}
