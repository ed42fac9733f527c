public import Foundation
import GRDB
public import TandemCore

extension ReplicaStore {
    /// A person this member deals with, as the server's directory names them (PROTOCOL.md
    /// §7.2): a patient's care team, a mentor's patients and supervisors, a supervisor's
    /// mentors.
    public struct DirectoryEntry: Sendable, Equatable {
        public var member: MemberID
        public var name: String
        public var role: Role

        public init(member: MemberID, name: String, role: Role) {
            self.member = member
            self.name = name
            self.role = role
        }
    }

    /// The directory as the server last sent it, by name.
    public func directory() throws -> [DirectoryEntry] {
        do {
            return try queue.read { db in
                try Row.fetchAll(db, sql: "SELECT member, name, role FROM directory ORDER BY name, member").compactMap { row in
                    guard let member = try? MemberID(bytes: row["member"] as Data), let role = Role(rawValue: row["role"]) else { return nil }
                    return DirectoryEntry(member: member, name: row["name"], role: role)
                }
            }
        } catch {
            throw map(error)
        }
    }

    /// The digest of the directory held (nil: none received yet).
    public func directoryDigest() throws -> String? {
        do { return try queue.read { try String.fetchOne($0, sql: "SELECT digest FROM directory_digest") } } catch { throw map(error) }
    }

    /// Replaces the directory whole: whoever is not in `entries` is forgotten.
    public func replaceDirectory(_ entries: [DirectoryEntry], digest: String) throws {
        do {
            try queue.write { db in
                try db.execute(sql: "DELETE FROM directory")
                for entry in entries {
                    try db.execute(
                        sql: "INSERT OR REPLACE INTO directory (member, name, role) VALUES (?, ?, ?)",
                        arguments: [Data(entry.member.bytes), entry.name, entry.role.rawValue])
                }
                try db.execute(sql: "INSERT OR REPLACE INTO directory_digest (singleton, digest) VALUES (1, ?)", arguments: [digest])
            }
        } catch {
            throw map(error)
        }
    }
}
