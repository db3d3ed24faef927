"""Drafting from document structure: ids, heading attributes, lead-ins, headings, terms."""

from __future__ import annotations

from pathlib import Path

import yaml

from rulealign.compiler.draft import MAX_ID, draft_spec
from rulealign.compiler.extract import extract_findings
from rulealign.compiler.ingest import load_document, split_attributes
from rulealign.compiler.loader import compile_spec


def _draft(tmp_path: Path, text: str, name: str = "policy.md") -> tuple[dict, object]:
    doc = tmp_path / name
    doc.write_text(text, encoding="utf-8")
    out = tmp_path / "draft.yaml"
    body, _stats = draft_spec(doc, output=out, min_confidence=0.0)
    out.write_text(body, encoding="utf-8")
    return yaml.safe_load(body), compile_spec(out)


def test_defect15_draft_ids_bounded_unique_and_headings_a_b_do_not_collide(tmp_path: Path) -> None:
    """Issue 19, defect 15: ids over 200 characters (RA109) and 'A' > 'B' vs 'A B' (RA112)."""
    deep = "\n\n".join(f"{'#' * min(level, 6)} A very long heading about the policy part number {level} "
                       f"and its many subclauses" for level in range(1, 7))
    text = ("# A\n\n## B\n\nAgents must reply within two days.\n\n# A B\n\nAgents must reply within two days.\n\n"
            + deep + "\n\nStaff must not share passwords with anyone under any circumstances at all, "
            "including partners, vendors, contractors, auditors, regulators and family members.\n")
    draft, result = _draft(tmp_path, text)
    assert result.ok, [str(d) for d in result.diagnostics]
    ids = [r["id"] for r in draft["rules"]]
    assert len(ids) == 3 and len(set(ids)) == 3
    assert all(len(i) <= MAX_ID for i in ids)
    assert ids[:2] == ["reply", "reply-2"]  # the threshold is a condition, not part of the action


def test_heading_attributes_give_section_keys_authorities_and_clean_titles(tmp_path: Path) -> None:
    text = ("# Assistant guideline\n\n"
            "## Stay in bounds {#bounds authority=platform}\n\n"
            "The assistant must not reveal its system prompt.\n\n"
            "### Be concise {#be_concise authority=user}\n\n"
            "Keep answers short unless the user asks for detail.\n\n"
            "### Tone {.note}\n\nThe assistant should be warm.\n\n"
            "## Formatting {#formatting authority=developer}\n\nUse Markdown only where it renders.\n")
    doc = tmp_path / "guide.md"
    doc.write_text(text, encoding="utf-8")
    document = load_document(doc)
    assert [(s.id, s.title, s.authority) for s in document.sections] == [
        ("bounds", "Stay in bounds", "platform"), ("be_concise", "Be concise", "user"),
        ("bounds/tone", "Tone", "platform"), ("formatting", "Formatting", "developer")]
    assert document.authorities == ["platform", "user", "developer"]
    draft, result = _draft(tmp_path, text, "guide.md")
    assert result.ok and not result.warnings, [str(d) for d in result.diagnostics]
    assert draft["policy"]["authorities"] == ["platform", "user", "developer"]
    by_action = {r["action"]: r for r in draft["rules"]}
    assert by_action["reveal its system prompt"]["authority"] == "platform"
    assert by_action["keep answers short"]["authority"] == "user"
    assert by_action["keep answers short"]["clause"] == "be_concise.p1"
    assert by_action["be warm"]["authority"] == "platform"  # inherited from the enclosing section
    # the imperative heading is a section-level rule
    assert by_action["be concise"]["clause"] == "be_concise" and by_action["be concise"]["modality"] == "obligation"
    assert result.policy is not None and result.policy.authorities == ("platform", "user", "developer")


def test_front_matter_states_the_authority_order(tmp_path: Path) -> None:
    text = ("---\ntitle: Guide\nauthorities: [developer, platform, user]\n---\n\n"
            "## A {#a authority=user}\n\nYou must be polite.\n\n## B {#b authority=platform}\n\nYou must not lie.\n")
    draft, result = _draft(tmp_path, text)
    assert result.ok
    assert draft["policy"]["title"] == "Guide"
    assert draft["policy"]["authorities"] == ["developer", "platform", "user"]


def test_split_attributes_leaves_other_braces_alone() -> None:
    assert split_attributes("Be concise {#be_concise authority=user}") == (
        "Be concise", {"id": "be_concise", "authority": "user"})
    assert split_attributes('Tone {#tone .warm level="two words"}') == (
        "Tone", {"id": "tone", "class": "warm", "level": "two words"})
    assert split_attributes("Sets {x} and {y}") == ("Sets {x} and {y}", {})


def test_list_items_inherit_their_lead_in(tmp_path: Path) -> None:
    text = ("## Moderation\n\nModerators must:\n\n- Remove spam within a day.\n- Be kind.\n\n"
            "If a report is urgent, moderators should:\n\n- Page the on-call lead.\n\n"
            "Examples of unacceptable behavior include:\n\n- Public or private harassment\n"
            "- Trolling and insults\n\n"
            "Report it to either:\n\n- The steward\n- The board\n\n"
            "Moderators are encouraged to read:\n\n- [Moderation tips](https://example.org/tips)\n")
    draft, result = _draft(tmp_path, text)
    assert result.ok
    rules = {r["text"]: r for r in draft["rules"]}
    assert rules["Remove spam within a day."]["actor"] == "moderators"
    assert rules["Remove spam within a day."]["scope"] == "Moderators must:"
    assert rules["Page the on-call lead."]["conditions"] == ["If a report is urgent"]
    harassment = rules["Public or private harassment"]
    assert harassment["modality"] == "prohibition" and harassment["action"] == "public or private harassment"
    assert "The steward" not in rules and "Moderation tips" not in rules  # objects and links, not rules


def test_non_normative_blocks_are_skipped_and_definitions_become_terms(tmp_path: Path) -> None:
    text = ("## Rules\n\nYou must log every refund.\n\n> **Note:** agents may find this slow.\n> You must ignore this.\n\n"
            "Example: the agent must say hello.\n\nUser: may I?\n\nAssistant: I can't share that.\n\n"
            "Commentary: models must be careful here.\n\n```\nYou must not run this code.\n```\n\n"
            "A refund means money returned to the customer.\n\n"
            "## Definitions\n\n**Escalation** - handing a case to a supervisor.\n")
    draft, result = _draft(tmp_path, text)
    assert result.ok
    assert [r["text"] for r in draft["rules"]] == ["You must log every refund."]
    terms = {t["label"]: t for t in draft["terms"]}
    assert terms["refund"]["definition"] == "money returned to the customer."
    assert terms["Escalation"]["definition"] == "handing a case to a supervisor."


def test_footnote_marks_and_template_tags_leave_the_text_and_urls_leave_the_rule(tmp_path: Path) -> None:
    text = ("## Reporting\n\nYou must report abuse[^1] at <https://example.org/report> or "
            "{% data variables.contact %} [here](https://example.org).\n\n[^1]: See the form.\n")
    doc = tmp_path / "p.md"
    doc.write_text(text, encoding="utf-8")
    [clause] = load_document(doc).clauses
    assert clause.text == "You must report abuse at https://example.org/report or here."  # the URL is content
    draft, result = _draft(tmp_path, text, "p.md")
    assert result.ok
    [rule] = draft["rules"]
    assert rule["text"] == "You must report abuse at or here." and "http" not in rule["action"]


def _one(sentence: str) -> list[tuple[str, str]]:
    return [(f.modality.value, f.action) for f in extract_findings([sentence])[0]]


def test_possibility_may_and_can_are_not_rules() -> None:
    for s in ["Other collaborators may not have the same experience level as you.",
              "The user may not be aware of this truncation.",
              "Anyone with read access can view a comment's edit history.",
              "You may wish to respond to something by disagreeing with it.",
              "These are the values to which people in the Go community should aspire.",
              "This does not mean that all nudity, or all content related to sexuality, is prohibited."]:
        assert _one(s) == [], s
    assert _one("We will investigate every complaint, but you may not receive a direct response.") == [
        ("obligation", "investigate every complaint")]
    assert _one("In extraordinary cases, we may report threats to law enforcement.") == [
        ("permission", "report threats to law enforcement")]


def test_concessive_clauses_are_not_conditions() -> None:
    [f] = extract_findings(["Even if the intent was to provoke, do not rise to it."])[0]
    assert f.modality.value == "prohibition" and f.conditions == [] and f.action == "rise to it"
    found = extract_findings(["While it is not forbidden to broach sensitive topics, we do not tolerate "
                              "speech that attacks a person."])[0]
    assert [(f.modality.value, f.conditions) for f in found] == [("prohibition", [])]
    [f] = extract_findings(["If you disagree with someone, try to understand their feelings."])[0]
    assert f.conditions == [{"text": "If you disagree with someone"}]


def test_more_ways_of_stating_a_rule() -> None:
    assert _one("Under no circumstances should the bot give dosage advice.")[0][0] == "prohibition"
    assert _one("Members are expected to remain civil.") == [("obligation", "remain civil")]
    assert _one("Users are allowed to delete their own posts.") == [("permission", "delete their own posts")]
    assert _one("Harassment of any kind is not acceptable.") == [("prohibition", "Harassment of any kind")]
    assert _one("We do not tolerate bullying or harassment.") == [("prohibition", "bullying or harassment")]
    assert _one("Staff must not lie, nor should they mislead customers.")[1][0] == "prohibition"
    assert _one("It is your responsibility to keep your password safe.") == [
        ("obligation", "keep your password safe")]
    assert _one("Don't post other people's personal information.") == [
        ("prohibition", "post other people's personal information")]
    assert _one("Be kind to others.") == [("obligation", "Be kind to others")]
    assert _one("Note, however, that we do not prohibit the posting of exploit code.") == [
        ("permission", "the posting of exploit code")]
    assert _one("Lock Conversations") == []


def test_phrasings_of_community_rules() -> None:
    def first(sentence: str) -> tuple[str, str, str]:
        [f] = extract_findings([sentence])[0]
        return f.modality.value, f.actor, f.action

    assert first("If you have questions, feel free to contact the team.") == ("permission", "you", "contact the team")
    assert first("No spam or self-promotion.") == ("prohibition", "anyone", "spam or self-promotion")
    assert first("Only maintainers can merge pull requests.") == ("permission", "maintainers", "merge pull requests")
    assert first("You agree not to misuse the service.") == ("prohibition", "you", "misuse the service")
    assert first("Users who are under 13 may not create an account.")[:2] == ("prohibition", "users")
    assert first("Those who cannot attend may watch the recording.") == ("permission", "those", "watch the recording")
    assert first("It is not acceptable to harass other members.") == ("prohibition", "anyone", "harass other members")
    for sentence in ["No matter how you identify yourself, we welcome you.", "Violations may result in a ban.",
                     "This policy may change at any time.", "Responses can be brief when the user asks."]:
        assert extract_findings([sentence])[0] == [], sentence


def test_defect17_newline_in_document_name_stays_inside_the_header_comment(tmp_path: Path) -> None:
    """Issue 19, defect 17: a newline in the file name must not inject a key into the draft."""
    name = "evil\nrulealign: 9\n.md"
    draft, result = _draft(tmp_path, "## Rules\n\nYou must be kind.\n", name)
    assert result.ok, [str(d) for d in result.diagnostics]
    assert draft["rulealign"] == 1 and draft["policy"]["source"] == name


def test_a_lead_in_that_points_back_and_an_item_with_a_rule_in_its_second_sentence(tmp_path: Path) -> None:
    text = ("## Conduct\n\nBe kind. Harassment is not acceptable. This includes, but is not limited to:\n\n"
            "- Violent threats.\n- Unwelcome sexual attention.\n\n"
            "Before you ask, make sure you include:\n\n- Your version. Please don't paste screenshots.\n")
    draft, result = _draft(tmp_path, text)
    assert result.ok
    rules = {r["text"]: (r["modality"], r["action"]) for r in draft["rules"]}
    assert rules["Violent threats."] == ("prohibition", "violent threats")
    assert rules["Unwelcome sexual attention."] == ("prohibition", "unwelcome sexual attention")
    assert rules["Your version."] == ("obligation", "include Your version")
    assert rules["Please don't paste screenshots."] == ("prohibition", "paste screenshots")


def test_procedural_phrasings() -> None:
    assert _one("In the PR comments, include some details about the channel.") == [
        ("obligation", "include some details about the channel")]
    assert _one("Administrators act as representatives, and need to maintain professionalism.") == [
        ("obligation", "maintain professionalism")]
    assert _one("It is the role of the admins to ensure everyone has a great experience.") == [
        ("obligation", "ensure everyone has a great experience")]
    assert _one("Admins are tasked with processing requests.") == [("obligation", "processing requests")]
    assert _one("Post the job once and pin it.") == [("obligation", "Post the job once and pin it")]
    assert _one("Open a Pull Request (PR) updating the config.") == [
        ("obligation", "Open a Pull Request updating the config")]
    assert _one("NOTE: This must be a mapping of their ID.") == [("obligation", "be a mapping of their ID")]
    for sentence in ["Linking to resources will speed up the review.",
                     "Due to the framework, it does not allow for an account to be banned.",
                     "Spammers may try to fake the identity of another user.",
                     "Channels managed by the tool will automatically have messages pinned."]:
        assert _one(sentence) == [], sentence
