/// What a member does at the center. Server-authoritative: no device push changes it.
public enum Role: String, CaseIterable, Hashable, Sendable {
    case patient, mentor, supervisor, staff
}

/// A person known to the server, as devices see their read-only copy.
public struct Member: Hashable, Sendable {
    public var id: MemberID
    public var name: String
    public var role: Role

    public init(id: MemberID, name: String, role: Role) {
        self.id = id
        self.name = name
        self.role = role
    }

    /// Whether `text` names a member called `name`: the same name, letter case aside. The
    /// one rule for every `--patient`, `--to`, `--staff` or `MEMBER` given as a name.
    public static func name(_ name: String, matches text: String) -> Bool { name.lowercased() == text.lowercased() }
}
