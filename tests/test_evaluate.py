"""The relevance evaluator, on a collection small enough to score by hand."""

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from search_service.cli import app
from search_service.config import load_config
from search_service.evaluate import add_typos, evaluate_corpus


def article(slug: str, title: str, body: str) -> dict:
    url = f"https://news.example.com/{slug}"
    return {
        "slug": slug,
        "title": title,
        "summary": "",
        "body_md": f"# {title}\n\n{body}",
        "url": url,
        "canonical_source": url,
        "published_at": "2026-05-01T10:00:00Z",
        "updated_at": "2026-05-01T10:00:00Z",
        "lang": "en",
        "topics": [],
        "entities": [],
        "alternates": {},
    }


@pytest.fixture
def collection(tmp_path: Path) -> dict[str, Path]:
    articles = [
        article("cats-purr", "Cats purr", "Cats purr when they are content and purr again when fed."),
        article("dogs-bark", "Dogs bark", "Dogs bark at the postman; one neighbour said her dog would purr."),
        article("birds-sing", "Birds sing", "Birds sing at dawn in spring."),
    ]
    corpus = tmp_path / "articles.jsonl"
    corpus.write_text("".join(json.dumps(a) + "\n" for a in articles))
    queries = tmp_path / "queries.tsv"
    # q1: the one relevant article is the only hit.          nDCG 1, AP 1,   R 1
    # q2: no article has both words, the fallback ranks both; both relevant: nDCG 1, AP 1, R 1
    # q3: nothing matches.                                   nDCG 0, AP 0,   R 0
    # q4: the relevant article mentions 'purr' once, below cats-purr: rank 2:
    #     nDCG 1/log2(3), AP 1/2, R 1
    queries.write_text("q1\tcats\nq2\tdogs birds\nq3\tfish\nq4\tpurr\n")
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("q1\tcats-purr\t1\nq2\tdogs-bark\t1\nq2\tbirds-sing\t1\nq3\tcats-purr\t1\nq4\tdogs-bark\t1\n")
    return {"corpus": corpus, "queries": queries, "qrels": qrels}


EXPECTED = {
    "ndcg@10": (1 + 1 + 0 + 1 / math.log2(3)) / 4,
    "map@100": (1 + 1 + 0 + 0.5) / 4,
    "recall@100": (1 + 1 + 0 + 1) / 4,
}


def test_evaluator_metrics_match_hand_computed_values(collection: dict[str, Path]):
    result = evaluate_corpus(load_config(), collection["queries"], collection["qrels"], [str(collection["corpus"])])
    assert result.queries == 4
    for name, value in EXPECTED.items():
        assert result.metrics[name] == pytest.approx(value, abs=1e-4), name


def test_evaluate_command_prints_the_metrics_as_json(collection: dict[str, Path]):
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--corpus",
            str(collection["corpus"]),
            "--queries",
            str(collection["queries"]),
            "--qrels",
            str(collection["qrels"]),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert set(metrics) == {"ndcg@10", "map@100", "recall@100"}
    assert metrics["map@100"] == pytest.approx(EXPECTED["map@100"], abs=1e-4)


def test_evaluate_command_without_corpus_or_index_is_an_error(collection: dict[str, Path]):
    result = CliRunner().invoke(
        app, ["evaluate", "--queries", str(collection["queries"]), "--qrels", str(collection["qrels"])]
    )
    assert result.exit_code != 0
    assert "--corpus" in result.output


def test_typos_edit_every_long_word_once_and_deterministically():
    text = "Elevated cholesterol increases cardiovascular risk in men"
    once, again = add_typos(text, 7), add_typos(text, 7)
    assert once == again
    assert once != add_typos(text, 8)
    for original, typo in zip(text.split(), once.split(), strict=True):
        if len(original) >= 5:
            assert typo != original
            assert abs(len(typo) - len(original)) <= 1
        else:
            assert typo == original
