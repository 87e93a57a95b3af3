"""What the reader practises with: quizzes that grade themselves (``quiz``, with ``quiz_assets/``),
spot-the-bug drills (``drills``) and the buggy reference answers they run (``reference_answers``).
"""
