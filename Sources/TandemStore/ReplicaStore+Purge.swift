public import Foundation
import GRDB
public import TandemCore

extension ReplicaStore {
    /// Removes records and every byte of them from disk: rows are deleted with
    /// `secure_delete` on (SQLite overwrites the freed content with zeros), then the WAL is
    /// checkpointed into the database and truncated to zero bytes.
    ///
    /// A device never purges its own records or anything in its outbox; callers (the sync
    /// driver, on revocation) pass only records received from others.
    public func purge(_ ids: [RecordID]) throws {
        do {
            try queue.write { db in
                for id in ids {
                    let key = Data(id.bytes)
                    for table in ["field_state", "text_value"] {
                        try db.execute(sql: "DELETE FROM \(table) WHERE record = ?", arguments: [key])
                    }
                    for table in ["journal_entry", "mentor_note", "consent"] {
                        try db.execute(sql: "DELETE FROM \(table) WHERE id = ?", arguments: [key])
                    }
                }
            }
            try queue.writeWithoutTransaction { db in
                _ = try db.checkpoint(.truncate)
            }
        } catch {
            throw map(error)
        }
    }
}
