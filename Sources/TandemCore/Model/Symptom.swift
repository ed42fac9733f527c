/// The fixed vocabulary of withdrawal symptoms (PROTOCOL.md §6.1).
///
/// Each symptom is its own `lww` boolean field `symptom.<name>`, so that concurrent
/// additions of different symptoms both survive (an LWW-element set).
public enum Symptom: String, CaseIterable, Hashable, Comparable, Sendable {
    case anxiety, insomnia, nausea, vomiting, diarrhea, sweating, chills, tremor, aches
    case irritability, restlessness, yawning
    case runnyNose = "runny-nose"
    case cravingsAtNight = "cravings-at-night"

    public var field: FieldName { FieldName(unchecked: "symptom." + rawValue) }

    /// Accepts the wire name (`runny-nose`) and the readable one (`runny nose`).
    public init?(name: String) {
        let normalized = name.lowercased().split(whereSeparator: { $0 == " " || $0 == "_" || $0 == "-" }).joined(separator: "-")
        self.init(rawValue: normalized)
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}
