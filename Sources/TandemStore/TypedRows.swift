import Foundation
import GRDB
import TandemSQLite
import TandemCore

/// The typed rows of a record, recomputed from its merged state: what queries read.
enum TypedRows {
    static func write(_ record: RecordState, old: RecordState?, _ db: Database) throws {
        let key = record.id.bytes
        // The collection is read once: it is a lookup in the create's map.
        let collection = record.collection
        let entry = collection == .journal ? JournalEntry(record) : nil
        // Journal rows are keyed by local time: drop the old row when its key changes.
        if let previous = old.flatMap(JournalEntry.init), entry == nil || previous.at != entry?.at {
            try db.run("DELETE FROM journal_entry WHERE local_date = ? AND at_utc = ? AND id = ?") {
                $0.text(previous.at?.date.description ?? "")
                $0.int(Int64(previous.at?.epochMillis ?? 0))
                $0.blob(key)
            }
        }
        if let entry {
            try db.run("""
                INSERT OR REPLACE INTO journal_entry (local_date, at_utc, id, at, mood, craving, slept, symptoms, tags, texts)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """) {
                $0.text(entry.at?.date.description ?? "")
                $0.int(Int64(entry.at?.epochMillis ?? 0))
                $0.blob(key)
                $0.text(entry.at?.description)
                $0.int(entry.mood)
                $0.int(entry.craving)
                $0.int(entry.quarterHoursSlept)
                $0.text(entry.symptoms.sorted().map(\.rawValue).joined(separator: ","))
                $0.int(entry.tags.count)
                $0.int(entry.text.count)
            }
        }
        guard collection == .note || collection == .consent else { return }
        if let note = MentorNote(record) {
            try db.run("INSERT OR REPLACE INTO mentor_note (id, patient, date, shared, follow_ups, texts) VALUES (?, ?, ?, ?, ?, ?)") {
                $0.blob(key)
                $0.blob(note.patient.bytes)
                $0.text(note.date?.description)
                $0.int(note.isShared ? 1 : 0)
                $0.int(note.followUps.count)
                $0.int(note.text.count)
            }
        } else if collection == .note {
            try db.run("DELETE FROM mentor_note WHERE id = ?") { $0.blob(key) }
        }
        if let consent = Consent(record) {
            try db.run("INSERT OR REPLACE INTO consent (id, patient, recipient, scope, expires, revoked) VALUES (?, ?, ?, ?, ?, ?)") {
                $0.blob(key)
                $0.blob(consent.patient.bytes)
                $0.blob(consent.recipient.bytes)
                $0.text(consent.scope.rawValue)
                $0.int(consent.expiresMillis.map { Int($0) })
                $0.int(consent.revokedMillis.map { Int($0) })
            }
        } else if collection == .consent {
            try db.run("DELETE FROM consent WHERE id = ?") { $0.blob(key) }
        }
    }
}
