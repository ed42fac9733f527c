/// A peer mentor's note about one patient (PROTOCOL.md §6.2).
public struct MentorNote: Hashable, Sendable {
    public var id: RecordID
    /// The patient it is about: set once, in the create.
    public var patient: MemberID
    public var date: LocalDate?
    public var text: [TextValue]
    public var followUps: [String]
    /// The one editable field that decides visibility: shared notes reach the patient.
    public var isShared: Bool

    public init?(_ record: RecordState) {
        guard record.collection == .note, !record.isDeleted,
              let bytes = record.createFields["patient"]?.bytesValue, let patient = try? MemberID(bytes: bytes)
        else { return nil }
        id = record.id
        self.patient = patient
        date = record.value("date")?.stringValue.flatMap { try? LocalDate(parsing: $0) }
        text = TextValue.values(of: record.register("text"))
        followUps = record.elements(prefix: "followup.")
        isShared = record.value("shared")?.boolValue ?? false
    }
}

/// What a mentor writes or changes in one note.
public struct NoteEdit: Sendable {
    /// Required when creating; set-once.
    public var patient: MemberID?
    public var date: LocalDate?
    public var text: String?
    public var addFollowUps: [String] = []
    public var removeFollowUps: [String] = []
    public var shared: Bool?

    public init() {}

    public func recordEdit() throws(TandemCoreError) -> RecordEdit {
        var edit = RecordEdit(collection: .note)
        if let patient { edit.createFields["patient"] = .bytes(patient.bytes) }
        if let date { edit.set("date", .string(date.description)) }
        if let text { edit.text("text", text) }
        for item in addFollowUps {
            // Kept as written, named after its normalized text.
            let text = try SetElement.display(item, field: "followup")
            edit.set(SetElement.field(prefix: "followup", normalizedText: text.lowercased()), .string(text))
        }
        for item in removeFollowUps {
            let text = try SetElement.normalize(item, field: "followup")
            edit.set(SetElement.field(prefix: "followup", normalizedText: text), .null)
        }
        if let shared { edit.set("shared", .bool(shared)) }
        return edit
    }
}
