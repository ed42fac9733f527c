/// Errors of the command line itself; each prints as one line naming the problem.
enum CLIError: Error, CustomStringConvertible {
    case unknownSymptom(String)
    case invalidDate(String)
    case unreadableTextFile(String)
    case invalidMember(String)
    case nothingToChange
    case invalidChoice(String)
    case noServerStore(String)

    var description: String {
        switch self {
        case .unknownSymptom:
            "Unknown symptom; use one of: " + SymptomNames.all.joined(separator: ", ") + "."
        case .invalidDate(let expected):
            "The date does not parse; write it like \(expected)."
        case .unreadableTextFile(let path):
            "Cannot read the text file \(path)."
        case .invalidMember(let what):
            "\(what) must be a member id (32 hexadecimal digits)."
        case .nothingToChange:
            "Nothing to change: give at least one option to set."
        case .invalidChoice(let what):
            what
        case .noServerStore(let path):
            "No server store at \(path): give the store's path with --db, or create one with tandem admin init."
        }
    }
}
