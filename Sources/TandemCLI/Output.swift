import Foundation
import TandemCore
import TandemProtocol

/// Terminal styling: colour only on a terminal, and never when `NO_COLOR` is set.
struct Style {
    let enabled: Bool

    static let current = Style(enabled: isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil)

    func bold(_ text: String) -> String { enabled ? "\u{1B}[1m\(text)\u{1B}[0m" : text }
    func warn(_ text: String) -> String { enabled ? "\u{1B}[33m\(text)\u{1B}[0m" : text }
    func dim(_ text: String) -> String { enabled ? "\u{1B}[2m\(text)\u{1B}[0m" : text }
}

/// A plain text table: a header and left-aligned columns.
func table(_ header: [String], _ rows: [[String]], style: Style = .current) -> String {
    var widths = header.map(\.count)
    for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { index, cell in
            index == cells.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count)
        }.joined(separator: "  ")
    }
    return ([style.bold(line(header))] + rows.map(line)).joined(separator: "\n")
}

/// Stable JSON: sorted keys, pretty, documented in docs/cli.md. Empty arrays and objects
/// print as `[]` and `{}` (Foundation's pretty printer puts an empty line inside them; a
/// real line break never occurs inside a JSON string, so only structure is touched).
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
    print(prettyJSON(try encoder.encode(value)))
}

func prettyJSON(_ data: Data) -> String {
    String(decoding: data, as: UTF8.self)
        .replacingOccurrences(of: #"\[\n\s*\]"#, with: "[]", options: .regularExpression)
        .replacingOccurrences(of: #"\{\n\s*\}"#, with: "{}", options: .regularExpression)
}

/// One JSON object on one line (for streams such as `sync --watch --json`).
func printJSONLine(_ value: some Encodable) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    guard let data = try? encoder.encode(value) else { return }
    printLineNow(String(decoding: data, as: UTF8.self))
}

/// A line on standard output, written at once (not held in a buffer when piped).
func printLineNow(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// A line on standard error.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

func shortID(_ id: RecordID) -> String { String(id.hex.prefix(8)) }

/// A change's time as UTC ISO 8601 with milliseconds.
func isoTime(_ timestamp: HybridTimestamp) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    formatter.timeZone = TimeZone(identifier: "UTC")
    return formatter.string(from: Date(timeIntervalSince1970: Double(timestamp.wallMillis) / 1000))
}

/// A time in milliseconds since 1970 as UTC ISO 8601 (whole seconds).
func isoMillis(_ millis: UInt64) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    formatter.timeZone = TimeZone(identifier: "UTC")
    return formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
}

/// The local date (this device's time zone) of a time in milliseconds since 1970.
func isoDay(_ millis: UInt64, timeZone: TimeZone = .current) -> String {
    (try? DateInput.now(millis, timeZone: timeZone).date.description) ?? String(isoMillis(millis).prefix(10))
}

func hours(_ quarters: Int?) -> String {
    guard let quarters else { return "" }
    let value = Double(quarters) / 4
    return value == value.rounded() ? "\(Int(value))h" : "\(value)h"
}

enum SymptomNames {
    static let all = Symptom.allCases.map(\.rawValue)
}

/// Stored text made safe for a terminal, as git quotes odd path names: a control
/// character (C0, DEL, C1) or a bidirectional override is shown as the octal escapes of its
/// UTF-8 bytes (`\033` for ESC), and a backslash then as `\\`, so nothing read from a
/// store or a server can move the cursor, erase lines or reorder what is shown. Text
/// without such characters is unchanged. With `keepingLineBreaks`, `\n` and `\t` stay as
/// they are (free text shown as a block); in a table cell they are escaped too.
/// `--json` output never goes through this: it stays exact.
func terminalSafe(_ text: String, keepingLineBreaks: Bool = false) -> String {
    func unsafe(_ scalar: Unicode.Scalar) -> Bool {
        if keepingLineBreaks, scalar == "\n" || scalar == "\t" { return false }
        return DisplayName.isForbidden(scalar)
    }
    guard text.unicodeScalars.contains(where: unsafe) else { return text }
    var result = ""
    for scalar in text.unicodeScalars {
        if scalar == "\\" {
            result += "\\\\"
        } else if unsafe(scalar) {
            for byte in String(scalar).utf8 { result += "\\" + String(byte, radix: 8).leftPadded(to: 3) }
        } else {
            result.unicodeScalars.append(scalar)
        }
    }
    return result
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
