import Foundation
import GRDB
import TandemCore

/// The typed rows of a record, recomputed from its merged state: what queries read.
enum TypedRows {
    static func write(_ record: RecordState, _ db: Database) throws {
        let key = Data(record.id.bytes)
        if let entry = JournalEntry(record) {
            try db.cachedStatement(sql: """
                INSERT OR REPLACE INTO journal_entry (id, at, at_utc, local_date, mood, craving, slept, symptoms, tags, texts)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [
                    key, entry.at?.description, entry.at?.epochMillis, entry.at?.date.description, entry.mood, entry.craving,
                    entry.quarterHoursSlept, entry.symptoms.sorted().map(\.rawValue).joined(separator: ","),
                    entry.tags.count, entry.text.count,
                ])
        } else {
            try db.cachedStatement(sql: "DELETE FROM journal_entry WHERE id = ?").execute(arguments: [key])
        }
        if let note = MentorNote(record) {
            try db.cachedStatement(sql: """
                INSERT OR REPLACE INTO mentor_note (id, patient, date, shared, follow_ups, texts) VALUES (?, ?, ?, ?, ?, ?)
                """).execute(arguments: [key, Data(note.patient.bytes), note.date?.description, note.isShared, note.followUps.count, note.text.count])
        } else if record.collection == .note {
            try db.cachedStatement(sql: "DELETE FROM mentor_note WHERE id = ?").execute(arguments: [key])
        }
        if let consent = Consent(record) {
            try db.cachedStatement(sql: """
                INSERT OR REPLACE INTO consent (id, patient, recipient, scope, expires, revoked) VALUES (?, ?, ?, ?, ?, ?)
                """).execute(arguments: [
                    key, Data(consent.patient.bytes), Data(consent.recipient.bytes), consent.scope.rawValue,
                    consent.expiresMillis, consent.revokedMillis,
                ])
        } else if record.collection == .consent {
            try db.cachedStatement(sql: "DELETE FROM consent WHERE id = ?").execute(arguments: [key])
        }
    }
}
