/// Free-text set elements (tags, follow-up items): normalized, and named by a hash.
///
/// `FieldName.element(prefix:text:)` is `<prefix>.<32 hex digits>`: the first 128 bits of
/// SHA-256 of the normalized text. The text as written (`display`: trimmed, inner white
/// space collapsed, case kept) is the field's `lww` value, so "Call Friday" shows as
/// written while "call  friday" names the same element; and
/// removing the element sets the value to null. So concurrent additions of different
/// tags both survive, and no tag text ever appears in a field name, a log or an error.
/// A hash is not secret: it hides a tag from casual reading, not from a dictionary
/// attack, which is why field names are never shown outside the data path either.
public enum SetElement {
    /// The longest element text, in bytes after normalization.
    public static let maxBytes = 200

    /// The text as it is kept and shown: trimmed, inner white space collapsed to one space,
    /// case kept.
    ///
    /// - Throws: `TandemCoreError.invalidValue` for an empty or over-long text.
    public static func display(_ text: String, field: String) throws(TandemCoreError) -> String {
        let shown = text.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
        guard !shown.isEmpty, shown.utf8.count <= maxBytes, shown.lowercased().utf8.count <= maxBytes else {
            throw .invalidValue(field: field, rule: "an element must have 1 to \(maxBytes) bytes of text")
        }
        return shown
    }

    /// What elements are compared by, and named after: `display`, lowercased.
    ///
    /// - Throws: `TandemCoreError.invalidValue` for an empty or over-long text.
    public static func normalize(_ text: String, field: String) throws(TandemCoreError) -> String {
        try display(text, field: field).lowercased()
    }

    /// Whether `value` is an element of the set `prefix` kept as `field` would be: text as
    /// `display` leaves it, in the field its normalized text names.
    public static func belongs(_ value: String, to field: FieldName, prefix: String) -> Bool {
        guard let shown = try? display(value, field: ""), shown == value else { return false }
        return Self.field(prefix: prefix, normalizedText: shown.lowercased()) == field
    }

    /// The field that holds `text` in the set named `prefix`.
    public static func field(prefix: String, normalizedText: String) -> FieldName {
        let digest = SHA256Digest.hash(Array(normalizedText.utf8))
        return FieldName(unchecked: prefix + "." + hexString(digest.prefix(16)))
    }
}
