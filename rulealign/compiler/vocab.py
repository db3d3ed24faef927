"""Closed word lists the rule-based extractor reads sentences with (no trained model).

``IMPERATIVE_VERBS`` are base forms of verbs that open instructions in policies, guidelines and
codes of conduct ("Treat", "Report", "Avoid"); a sentence-initial word from it, not followed by a
finite verb, is read as an imperative. ``NOUN_LIKE`` are the ones that as often open a noun
phrase ("Report messages are reviewed", "Use of force"). The other lists are grammatical words:
subordinators that make a modal verb part of a dependent clause, pronouns and other subjects.
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


IMPERATIVE_VERBS = _words("""
abide accept access acknowledge act add address adhere adjust advise advocate agree alert allow
alter answer apologise apologize appeal apply appreciate approach approve archive argue arrange
ask assess assign assist assume attach attend attribute avoid back be beware become begin behave bring
browse build bump call cancel care carry cc celebrate challenge change check choose cite clarify
clean click close collaborate collect combine come comment commit communicate compare complain
complete comply confirm connect consider consult contact contain continue contribute control copy
correct create credit criticize criticise cross-post cultivate de-escalate deal decide declare
decline delete delegate deliver demonstrate describe design determine develop direct disable
disagree disrupt disclose discuss display distribute divert do document donate double double-check drop edit
educate elaborate email embrace emphasize emphasise enable encourage end engage enlist ensure
enter escalate establish evaluate examine exclude exercise expect explain explore express extend
find fix flag focus follow forget forward foster get give go grant greet grow guard handle help
hide highlight hold honor honour identify ignore imagine implement include inform insist install
interpret introduce invite involve join judge keep know label lead learn leave let limit link
listen lock log look mail maintain make manage mark mention message minimize minimise mind moderate
monitor move name note notice notify obey observe obtain offer open operate opt organize organise
own participate pass pay perform pin ping place plan please point post practice practise prefer
prepare present preserve prevent prioritize prioritise proceed promote protect provide publish
pull push put raise reach read reason realize realise recognize recognise recommend record redact reduce refer
reflect refrain refuse regard reject relate release rely remain remember remind remove repeat
reply report request require research resist resolve respect respond rest restrict retain return
review revise rise ruin run save say search seek select send separate set share show sign
solicit speak specify spend stand start state stay step stick stop store strive submit suggest
summarize summarise support suspend switch tag take talk teach tell test thank think threaten
track train transfer translate treat try turn understand unsubscribe update upload use validate
verify view vote wait warn watch wear weigh welcome withdraw work write yield
land revert append register merge rebase squash backport rerun
""")

# Verbs that as often begin a noun phrase; read as imperative only when what follows fits a verb.
NOUN_LIKE = _words("""
access answer appeal back call care change check comment contact control copy credit deal design
document end flag help hold label lead link list lock log mark message name note notice offer
order pin ping place plan point post practice present reach record release reply report request
research rest review run search set share sign start stay step stop store support tag talk test
track train turn use view vote wait watch work land revert register merge squash backport
""")

MODALS = frozenset({"must", "shall", "should", "may", "might", "can", "cannot", "could", "will", "would",
                    "ought", "need", "needs", "wo", "ca", "sha", "'ll", "’ll"})
AUXILIARIES = frozenset({"is", "are", "am", "was", "were", "be", "been", "being", "has", "have",
                         "had", "do", "does", "did", "'s", "'re", "’s", "’re"})
PRONOUN_SUBJECTS = frozenset({"i", "you", "we", "they", "he", "she", "it", "everyone",
                              "everybody", "anyone", "anybody", "someone", "somebody", "nobody",
                              "no-one", "one", "people", "users", "members", "participants",
                              "contributors", "maintainers", "moderators", "admins", "staff"})
# Subordinators: a modal verb after one of these (in the same clause) is not the main clause's.
SUBORDINATORS = frozenset({"that", "which", "who", "whom", "whose", "where", "wherever", "when",
                           "whenever", "if", "unless", "because", "since", "although", "though",
                           "while", "whilst", "whereas", "whether", "how", "what", "why", "so",
                           "once", "until", "till", "than", "whatever", "whoever",
                           "lest"})
CONCESSIVE = frozenset({"although", "though", "while", "whilst", "whereas", "even"})
CONDITIONAL = frozenset({"if", "when", "whenever", "once", "unless", "provided", "in", "should",
                         "where", "wherever", "before", "after", "during", "until"})
DISCOURSE = frozenset({"please", "also", "just", "then", "instead", "first", "firstly", "finally",
                       "additionally", "likewise", "similarly", "again", "and", "but", "or",
                       "therefore", "thus", "still", "however", "otherwise", "generally",
                       "rather", "ideally", "really", "simply", "kindly", "now",
                       "particular", "general", "short", "of", "course", "above", "especially",
                       "overall", "lastly", "secondly", "thirdly", "next", "further",
                       "furthermore", "moreover", "such", "always", "do"})


def imperative_verb(word: str, following: list[str]) -> bool:
    """Whether ``word`` opening a sentence reads as an imperative verb, given the next words."""
    w = word.lower()
    if w not in IMPERATIVE_VERBS:
        return False
    nxt = [t.lower() for t in following[:3]]
    if nxt and (nxt[0] in AUXILIARIES or nxt[0] in MODALS):
        return False  # "Use is ...", "Report will ..." - the word is the subject
    if w in NOUN_LIKE:  # "Report messages are reviewed", "Use of force is banned"
        for t in nxt:
            if t in AUXILIARIES or t in MODALS:
                return False
            if not t.isalpha():
                break
        return not nxt or nxt[0] != "of"
    return True


# Verbs after which "that" opens a complement clause ("This does not mean that X is banned").
REPORTING = frozenset({"mean", "means", "meant", "say", "says", "said", "note", "notes", "ensure",
                       "ensures", "recognize", "recognise", "realize", "realise", "believe", "think",
                       "know", "understand", "expect", "clear", "true", "fact", "is", "was", "so",
                       "remember", "assume", "suggest", "suggests", "imply", "implies", "claim"})
