import TandemCore
import TandemStore

// The shapes of `--json` output, documented in docs/cli.md. Field names are stable:
// add fields, never rename or remove them.

struct TextValueJSON: Encodable {
    var text: String
    /// When it was written, UTC.
    var writtenAt: String
    var replica: String
    var changeId: String

    init(_ value: TextValue) {
        text = value.text
        writtenAt = isoTime(value.id.timestamp)
        replica = value.id.replica.hex
        changeId = "\(value.id.timestamp.wallMillis).\(value.id.timestamp.counter)@\(value.id.replica.hex)"
    }
}

struct JournalRowJSON: Encodable {
    var id: String
    var at: String?
    var mood: Int?
    var craving: Int?
    var hoursSlept: Double?
    var symptoms: [String]
    var tags: Int
    var texts: Int
    var conflict: Bool

    init(_ row: ReplicaStore.JournalRow) {
        id = row.id.hex
        at = row.at
        mood = row.mood
        craving = row.craving
        hoursSlept = row.quarterHoursSlept.map { Double($0) / 4 }
        symptoms = row.symptoms
        tags = row.tags
        texts = row.texts
        conflict = row.texts > 1
    }
}

struct JournalEntryJSON: Encodable {
    var id: String
    var at: String?
    var mood: Int?
    var craving: Int?
    var hoursSlept: Double?
    var symptoms: [String]
    var tags: [String]
    var text: [TextValueJSON]
    var conflict: Bool
    /// Another person's entry: whose (their member id), and the notice of 42 CFR §2.32.
    var patient: String?
    var notice: String?

    init(_ entry: JournalEntry) {
        id = entry.id.hex
        at = entry.at?.description
        mood = entry.mood
        craving = entry.craving
        hoursSlept = entry.hoursSlept
        symptoms = entry.symptoms.sorted().map(\.rawValue)
        tags = entry.tags
        text = entry.text.map(TextValueJSON.init)
        conflict = entry.text.count > 1
    }
}

struct NoteRowJSON: Encodable {
    var id: String
    var patient: String
    var date: String?
    var sharedWithPatient: Bool
    var followUps: Int
    var texts: Int
    var conflict: Bool

    init(_ row: ReplicaStore.NoteRow) {
        id = row.id.hex
        patient = row.patient.hex
        date = row.date
        sharedWithPatient = row.shared
        followUps = row.followUps
        texts = row.texts
        conflict = row.texts > 1
    }
}

struct NoteJSON: Encodable {
    var id: String
    var patient: String
    var date: String?
    var sharedWithPatient: Bool
    var followUps: [String]
    var text: [TextValueJSON]
    var conflict: Bool
    /// A note another member wrote: its author, and the notice of 42 CFR §2.32.
    var author: String?
    var notice: String?

    init(_ note: MentorNote) {
        id = note.id.hex
        patient = note.patient.hex
        date = note.date?.description
        sharedWithPatient = note.isShared
        followUps = note.followUps
        text = note.text.map(TextValueJSON.init)
        conflict = note.text.count > 1
    }
}

struct ConflictJSON: Encodable {
    var record: String
    var collection: String?
    var field: String
    var values: [TextValueJSON]

    init(_ conflict: ReplicaStore.Conflict) {
        record = conflict.record.hex
        collection = conflict.collection?.rawValue
        field = conflict.field.rawValue
        values = conflict.values.map(TextValueJSON.init)
    }
}
