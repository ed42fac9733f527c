/// The numbers of one journal entry that the center may count, de-identified, when its
/// patient granted an `aggregate` consent (PROTOCOL.md §6.3, §9.16): the day, mood,
/// craving, sleep and symptoms. Never text or tags.
///
/// ```swift
/// if let metrics = JournalMetrics(record, patient: owner) { … }   // nil: deleted, or not a journal entry
/// ```
public struct JournalMetrics: Hashable, Sendable {
    public var patient: MemberID
    /// The entry's local date, as days since 1970-01-01 (its `at`; without one, the UTC
    /// date its record was created).
    public var day: Int
    public var mood: Int?
    public var craving: Int?
    /// Quarter hours slept.
    public var slept: Int?
    /// One bit per symptom, `Symptom.bit`.
    public var symptoms: Int64

    public init(patient: MemberID, day: Int, mood: Int?, craving: Int?, slept: Int? = nil, symptoms: Int64) {
        self.patient = patient
        self.day = day
        self.mood = mood
        self.craving = craving
        self.slept = slept
        self.symptoms = symptoms
    }

    /// Reads the numbers of a live journal entry; nil for anything else. Reads only the
    /// fields it keeps (the push rules call it for every journal record a push touches).
    public init?(_ record: RecordState, patient: MemberID) {
        guard record.collection == .journal, !record.isDeleted else { return nil }
        let at = record.value("at")?.stringValue.flatMap { try? LocalDateTime(parsing: $0) }
        guard let day = at?.date.daysSince1970 ?? record.create.map({ Int($0.timestamp.wallMillis / 86_400_000) }) else { return nil }
        var symptoms: Int64 = 0
        for symptom in Symptom.allCases where record.value(symptom.field)?.boolValue == true { symptoms |= symptom.bit }
        self.init(
            patient: patient, day: day, mood: record.value("mood")?.intValue.map(Int.init),
            craving: record.value("craving")?.intValue.map(Int.init), slept: record.value("slept")?.intValue.map(Int.init),
            symptoms: symptoms)
    }
}

extension Symptom {
    /// This symptom's bit in `JournalMetrics.symptoms`: its place in `allCases`. Stored by
    /// the server, so a new symptom is only ever added at the end.
    public var bit: Int64 { Int64(1) << Int64(Symptom.allCases.firstIndex(of: self) ?? 0) }
}
