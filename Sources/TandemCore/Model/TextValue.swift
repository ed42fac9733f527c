/// One value of a free-text field: when two or more are held, they are a conflict.
public struct TextValue: Hashable, Sendable {
    /// The change that wrote it: where (replica) and when (timestamp).
    public var id: ChangeID
    public var text: String

    public init(id: ChangeID, text: String) {
        self.id = id
        self.text = text
    }

    static func values(of register: MultiValue?) -> [TextValue] {
        (register?.frontier ?? []).compactMap { change in
            guard case .string(let text) = change.value else { return nil }
            return TextValue(id: change.id, text: text)
        }
    }
}

extension RecordState {
    /// The texts of an element set (`tag.`, `followup.`): every element whose value is text.
    func elements(prefix: String) -> [String] {
        fields.compactMap { key, state -> String? in
            guard key.kind == .lww, key.field.rawValue.hasPrefix(prefix),
                  case .winner(let change) = state, case .string(let text) = change.value
            else { return nil }
            return text
        }.sorted { ($0.lowercased(), $0) < ($1.lowercased(), $1) }
    }
}
