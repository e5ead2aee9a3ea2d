"""Agreement JSON and CSV name reviewers by name and email beside their ids: the
summary's reviewer list, each pair, each reviewer against the others, each answer of
the most disagreeing items; the CSV's reviewers column, written safely when a name
reads like a formula."""

from __future__ import annotations

from hitl import tenancy
from hitl.csv_safe import unescape_cell
from review.quality.services import agreement
from tests.csv_checks import assert_runs_nothing
from tests.review.test_agreement_reports import _review, _setup, _url


def test_reviewers_are_named_by_name_and_email(tenant, client_for):
    config, reviewers, queue, items = _setup(tenant)
    names = [("Ada", "Lovelace"), ('=HYPERLINK("http://evil.example")', ""), ("", "")]
    for user, (first, last) in zip(reviewers, names, strict=True):
        user.first_name, user.last_name = first, last
        user.save(update_fields=["first_name", "last_name"])
    _review(tenant, queue, config, reviewers, items)
    with tenancy.tenant_scope(tenant.organization.pk):
        agreement.agreement_refresh(queue_id=queue.pk, resamples=20)
    expected = {
        reviewers[0].pk: ("Ada Lovelace", reviewers[0].email),
        reviewers[1].pk: ('=HYPERLINK("http://evil.example")', reviewers[1].email),
        # No full name: the account's username.
        reviewers[2].pk: (reviewers[2].username, reviewers[2].email),
    }
    owner = client_for(tenant.owner)
    body = owner.get(_url(tenant, queue)).json()
    assert {p["id"]: (p["name"], p["email"]) for p in body["reviewers"]} == expected
    figures = body["questions"][0]["report"]["figures"]
    for pair in figures["pairs"]:
        assert [d["id"] for d in pair["reviewer_details"]] == pair["reviewers"]
        for detail in pair["reviewer_details"]:
            assert (detail["name"], detail["email"]) == expected[detail["id"]]
    for entry in figures["reviewers"]:
        assert (entry["name"], entry["email"]) == expected[entry["reviewer"]]
    answers = [a for item in figures["most_disagreeing_items"] for a in item["answers"]]
    assert answers and all((a["name"], a["email"]) == expected[a["reviewer"]] for a in answers)

    header, *records = assert_runs_nothing(owner.get(_url(tenant, queue, "csv/")).text)
    rows = [dict(zip(header, record, strict=True)) for record in records]
    pairs = [r for r in rows if r["scope"] == "pair"]
    assert len(pairs) == 3  # 3 pairs, unweighted kappa (a nominal question)
    for row in pairs:
        ids = [int(i) for i in row["reviewer_ids"].split()]
        written = unescape_cell(row["reviewers"])
        assert written == "; ".join(f"{expected[i][0]} <{expected[i][1]}>" for i in ids)
    # The formula-like name is quoted where it starts a cell.
    first_is_formula = [r for r in pairs if r["reviewer_ids"].split()[0] == str(reviewers[1].pk)]
    assert all(r["reviewers"].startswith("'=") for r in first_is_formula)
