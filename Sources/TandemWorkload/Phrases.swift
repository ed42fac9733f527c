/// Synthetic words for generated journal text and notes. Nothing here comes from a person.
enum Phrases {
    static let openings = [
        "Woke up", "Couldn't sleep", "Rough night", "Better morning", "Group session helped",
        "Talked to my mentor", "Walked for an hour", "Ate a full meal", "Called my sister", "Slept in",
    ]
    static let middles = [
        "the shakes came back after lunch", "cravings were strong around four", "felt calmer than yesterday",
        "stomach still unsettled", "kept busy with the puzzle", "the nurse checked my vitals",
        "headache most of the day", "managed the evening without panic", "wrote down my triggers",
    ]
    static let endings = [
        "Tomorrow is another day.", "Going to bed early.", "Proud of today.", "Need to ask about meds.",
        "Will call the helpline if it gets bad.", "One day at a time.", "Small steps.",
    ]
    static let tags = ["family", "work stress", "meeting", "exercise", "music", "money", "friends", "weekend", "clinic", "weather"]
    static let followUps = ["check sleep routine", "call on friday", "bring meeting list", "ask about housing", "practice breathing", "review triggers"]
    static let notes = [
        "Patient reports steady progress", "Discussed coping plan", "Reviewed the week together",
        "Talked through a difficult evening", "Set goals for the weekend",
    ]

    static func journal(using rng: inout SeededGenerator) -> String {
        "\(rng.pick(openings)), \(rng.pick(middles)). \(rng.pick(endings))"
    }

    static func note(using rng: inout SeededGenerator) -> String {
        "\(rng.pick(notes)); \(rng.pick(middles))."
    }
}
