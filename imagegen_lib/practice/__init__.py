"""What the reader practises with: quizzes that grade themselves (``quiz``, built from ``quiz_model``,
``quiz_markdown``, ``quiz_html`` with ``quiz_assets/``, and ``quiz_widget``), spot-the-bug drills
(``drills``) and the buggy reference answers they run (``reference_answers``).
"""
