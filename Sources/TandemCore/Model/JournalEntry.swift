/// A detox journal entry, read from its merged record (PROTOCOL.md §6.1).
public struct JournalEntry: Hashable, Sendable {
    public var id: RecordID
    public var at: LocalDateTime?
    public var mood: Int?
    public var craving: Int?
    public var symptoms: Set<Symptom>
    /// Free tags as written, sorted regardless of case.
    public var tags: [String]
    /// Hours slept in quarter hours (0–96).
    public var quarterHoursSlept: Int?
    /// Every text value held: more than one is a conflict.
    public var text: [TextValue]

    public var hoursSlept: Double? { quarterHoursSlept.map { Double($0) / 4 } }

    /// Reads a journal entry; nil when the record is not a live journal entry.
    public init?(_ record: RecordState) {
        guard record.collection == .journal, !record.isDeleted else { return nil }
        id = record.id
        at = nil
        mood = nil
        craving = nil
        symptoms = []
        tags = []
        quarterHoursSlept = nil
        text = []
        // One pass over the fields (every merged journal entry passes here, a device's
        // initial sync included): no field name is built or hashed to be looked up.
        for (key, state) in record.fields {
            switch state {
            case .multiValue(let register):
                if key.field.rawValue == "text" { text = TextValue.values(of: register) }
            case .winner(let change):
                guard key.kind == .lww else { continue }
                let name = key.field.rawValue
                switch name {
                case "at": at = change.value.stringValue.flatMap { try? LocalDateTime(parsing: $0) }
                case "mood": mood = change.value.intValue.map(Int.init)
                case "craving": craving = change.value.intValue.map(Int.init)
                case "slept": quarterHoursSlept = change.value.intValue.map(Int.init)
                default:
                    if name.hasPrefix("symptom.") {
                        if change.value.boolValue == true, let symptom = Symptom(rawValue: String(name.dropFirst(8))) {
                            symptoms.insert(symptom)
                        }
                    } else if name.hasPrefix("tag."), case .string(let tag) = change.value {
                        tags.append(tag)
                    }
                }
            }
        }
        tags.sort { ($0.lowercased(), $0) < ($1.lowercased(), $1) }
    }
}

/// What a patient writes or changes in one journal entry.
///
/// ```swift
/// var edit = JournalEdit()
/// edit.mood = 4
/// edit.addSymptoms = [.nausea]
/// let changes = try writer.write(try edit.recordEdit(), to: id, current: nil, wallMillis: now)
/// ```
public struct JournalEdit: Sendable {
    public var at: LocalDateTime?
    public var mood: Int?
    public var craving: Int?
    public var addSymptoms: Set<Symptom> = []
    public var removeSymptoms: Set<Symptom> = []
    public var addTags: [String] = []
    public var removeTags: [String] = []
    /// 0 to 24, in quarter hours.
    public var hoursSlept: Double?
    public var text: String?

    public init() {}

    /// The field changes this edit makes.
    ///
    /// - Throws: `TandemCoreError.invalidValue` naming the field and its rule.
    public func recordEdit() throws(TandemCoreError) -> RecordEdit {
        var edit = RecordEdit(collection: .journal)
        if let at { edit.set("at", .string(at.description)) }
        if let mood { edit.set("mood", .int(Int64(mood))) }
        if let craving { edit.set("craving", .int(Int64(craving))) }
        if let hoursSlept {
            let quarters = hoursSlept * 4
            guard quarters.isFinite, quarters == quarters.rounded(), (0...Double(Schema.maxQuarterHours)).contains(quarters) else {
                throw .invalidValue(field: "slept", rule: "hours slept from 0 to 24, in quarter hours")
            }
            edit.set("slept", .int(Int64(quarters)))
        }
        if !addSymptoms.isDisjoint(with: removeSymptoms) {
            throw .invalidValue(field: "symptom", rule: "a symptom cannot be added and removed at once")
        }
        for symptom in addSymptoms.sorted() { edit.set(symptom.field, .bool(true)) }
        for symptom in removeSymptoms.sorted() { edit.set(symptom.field, .bool(false)) }
        for tag in addTags {
            // Kept as written, named after its normalized text.
            let text = try SetElement.display(tag, field: "tag")
            edit.set(SetElement.field(prefix: "tag", normalizedText: text.lowercased()), .string(text))
        }
        for tag in removeTags {
            let text = try SetElement.normalize(tag, field: "tag")
            edit.set(SetElement.field(prefix: "tag", normalizedText: text), .null)
        }
        if let text {
            guard text.utf8.count <= Schema.maxTextBytes else {
                throw .invalidValue(field: "text", rule: "text of at most \(Schema.maxTextBytes) bytes")
            }
            edit.text("text", text)
        }
        return edit
    }
}
