"""大莞家助手: the WeChat official-account bot of Dongguan's 民生大莞家 programme."""
